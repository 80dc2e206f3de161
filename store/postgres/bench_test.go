package postgres_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"crewmail/internal/searchq"
	"crewmail/store"
	"crewmail/store/postgres"
	"crewmail/store/postgres/pgtest"
)

// BenchmarkPostCommit: what a post commits (a 4 KiB message archived, three deliveries
// queued), from 16 concurrent writers, on one list (every post takes the list's counter row:
// conflicts, retried) and on a list per writer. Reports posts per second and the attempts per
// post (1 = no retry).
func BenchmarkPostCommit(b *testing.B) {
	for _, lists := range []int{1, 16} {
		b.Run(fmt.Sprintf("lists=%d", lists), func(b *testing.B) {
			db := open(b)
			for i := range lists {
				if err := db.Update(func(tx store.Tx) error { return tx.CreateList(store.List{Address: fmt.Sprintf("l%d@x.test", i)}) }); err != nil {
					b.Fatal(err)
				}
			}
			raw := make([]byte, 4096)
			var n, runs, writer atomic.Int64
			b.SetParallelism(8) // 16 writers on 2 cores
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				list := fmt.Sprintf("l%d@x.test", writer.Add(1)%int64(lists))
				for pb.Next() {
					id := n.Add(1)
					err := db.Update(func(tx store.Tx) error {
						runs.Add(1)
						p, err := tx.AppendPost(list, store.Post{MessageID: fmt.Sprintf("%d@bench", id)}, raw)
						if err != nil {
							return err
						}
						for m := range 3 {
							if _, err := tx.Enqueue(store.Delivery{List: list, Seq: p.Seq, To: fmt.Sprintf("m%d@x.test", m)}); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "posts/s")
			b.ReportMetric(float64(runs.Load())/float64(n.Load()), "attempts/post")
		})
	}
}

// BenchmarkSearchArchiveOnPostgres: CREWMAIL_BENCH_POSTS (default 5,000) corpus-shaped posts
// (as store's BenchmarkSearchArchive makes them) archived into one list, each post one Update
// from 8 concurrent writers as SMTP sessions make them: on PostgreSQL without and with the
// search index, and on a bbolt file with it, one after the other in the same run. It prints
// the ingest rates, the bytes per post of the archive and of the index (PostgreSQL: the
// tables with their indexes and TOAST), and the latency of searches of every kind, limit 10
// conversations as a search by mail asks (p50, p99), on both backends.
//
//	scripts/pg-cluster run -- env CREWMAIL_CORPUS=$PWD/../shared/corpus go test -run XXX -bench SearchArchiveOnPostgres -benchtime 1x ./store/postgres/
func BenchmarkSearchArchiveOnPostgres(b *testing.B) {
	n := 5000
	if v, err := strconv.Atoi(os.Getenv("CREWMAIL_BENCH_POSTS")); err == nil && v > 0 {
		n = v
	}
	raws, docs := corpusDocs(b, n)
	const list = "bench@x.test"
	for b.Loop() {
		plain := open(b)
		plainRate := ingest(b, plain, list, raws, docs, false)
		dsn := pgtest.DSN(b)
		pg, err := postgres.Open(dsn)
		if err != nil {
			b.Fatal(err)
		}
		pgRate := ingest(b, pg, list, raws, docs, true)
		bolt, err := store.OpenFile(filepath.Join(b.TempDir(), "crewmail.db"))
		if err != nil {
			b.Fatal(err)
		}
		boltRate := ingest(b, bolt, list, raws, docs, true)
		archive, index := relationSizes(b, dsn)
		pgLat, pgSlow := latencies(b, pg, list)
		boltLat, boltSlow := latencies(b, bolt, list)
		fmt.Printf("posts %d\n", n)
		fmt.Printf("ingest on PostgreSQL without index %.0f posts/s, with index %.0f posts/s: ratio %.2f; bbolt with index %.0f posts/s\n",
			plainRate, pgRate, pgRate/plainRate, boltRate)
		fmt.Printf("PostgreSQL bytes per post: archive (posts table) %d B, search index (search_docs, its GIN) %d B\n", archive/int64(n), index/int64(n))
		fmt.Printf("searches %d: PostgreSQL p50 %v, p99 %v, max %v; bbolt p50 %v, p99 %v, max %v\n", len(pgLat),
			pct(pgLat, 0.5), pct(pgLat, 0.99), pgLat[len(pgLat)-1], pct(boltLat, 0.5), pct(boltLat, 0.99), boltLat[len(boltLat)-1])
		fmt.Printf("slowest (median of 10 runs): PostgreSQL %s\n  bbolt %s\n", pgSlow, boltSlow)
		b.ReportMetric(pgRate/plainRate, "ingest-ratio")
		b.ReportMetric(float64(pct(pgLat, 0.99).Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(pct(pgLat, 0.5).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(index/int64(n)), "index-B/post")
		if err := bolt.Close(); err != nil {
			b.Fatal(err)
		}
		if err := pg.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// ingest archives raws into a new list of db, each post one Update from 8 writers (indexed
// as its doc says when index), and returns the posts per second.
func ingest(b *testing.B, db store.Backend, list string, raws [][]byte, docs []store.SearchDoc, index bool) float64 {
	if err := db.Update(func(tx store.Tx) error { return tx.CreateList(store.List{Address: list}) }); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(raws) {
					return
				}
				doc := store.NewSearchDoc(raws[i]) // before the transaction, as lists does
				doc.Thread, doc.Date = docs[i].Thread, docs[i].Date
				err := db.Update(func(tx store.Tx) error {
					p, err := tx.AppendPost(list, store.Post{MessageID: fmt.Sprintf("%d@bench", i), Date: doc.Date, From: fmt.Sprintf("m%d@x.test", i%40)}, raws[i])
					if err != nil || !index {
						return err
					}
					return tx.IndexPost(list, p.Seq, doc.For(p))
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(len(raws)) / time.Since(t0).Seconds()
}

// relationSizes are the bytes of the archive's table and of the search index's, each with
// its indexes and TOAST.
func relationSizes(b *testing.B, dsn string) (archive, index int64) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE posts, search_docs"); err != nil {
		b.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT pg_total_relation_size('posts'), pg_total_relation_size('search_docs')").Scan(&archive, &index); err != nil {
		b.Fatal(err)
	}
	return archive, index
}

// latencies are how long each of 10 rounds of corpusQueries takes, limit 10 conversations,
// sorted, and the three slowest queries with their median.
func latencies(b *testing.B, db store.Backend, list string) (lat []time.Duration, slowest string) {
	per := map[string][]time.Duration{}
	for range 10 {
		for _, text := range corpusQueries {
			q, err := searchq.Parse(text)
			if err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			if err := db.View(func(tx store.Tx) error {
				return tx.SearchPosts(list, q, 10, func(store.Hit) error { return nil })
			}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
			per[text] = append(per[text], time.Since(t0))
		}
	}
	slices.Sort(lat)
	type median struct {
		text string
		d    time.Duration
	}
	var ms []median
	for text, ds := range per {
		slices.Sort(ds)
		ms = append(ms, median{text, ds[len(ds)/2]})
	}
	slices.SortFunc(ms, func(a, b median) int { return int(b.d - a.d) })
	for _, m := range ms[:3] {
		slowest += fmt.Sprintf("%q %v; ", m.text, m.d.Round(10*time.Microsecond))
	}
	return lat, slowest
}

func pct(lat []time.Duration, q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
