package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"crewmail/internal/mailtest"
	"crewmail/internal/searchq"
	"crewmail/store"
	"crewmail/store/postgres"
	"crewmail/store/postgres/pgtest"
)

// searchFor returns the sequences query finds in list, newest first.
func searchFor(t *testing.T, db store.Backend, list, query string) []uint64 {
	t.Helper()
	q, err := searchq.Parse(query)
	if err != nil {
		t.Fatal(err)
	}
	seqs := []uint64{}
	if err := db.View(func(tx store.Tx) error {
		seqs = seqs[:0]
		return tx.SearchPosts(list, q, 0, func(h store.Hit) error { seqs = append(seqs, h.Seq); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return seqs
}

func indexed(t *testing.T, db store.Backend, list string) bool {
	t.Helper()
	var ok bool
	if err := db.View(func(tx store.Tx) (err error) { ok, err = tx.SearchIndexed(list); return err }); err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestSchema1ArchiveSearchableOnceReindexed: a database made by the first schema, with a
// list and its archive, is migrated at Open; its index is empty and said not to be complete
// (so IMAP does not narrow by it) until every post is indexed again, as crewmail reindex
// does; a post archived meanwhile is indexed with it.
func TestSchema1ArchiveSearchableOnceReindexed(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema1, err := os.ReadFile("migrations/001_initial.sql")
	if err != nil {
		t.Fatal(err)
	}
	const list = "crew@x.test"
	data, err := json.Marshal(store.List{Address: list, Incarnation: 7})
	if err != nil {
		t.Fatal(err)
	}
	raws := [][]byte{
		[]byte("From: Ann <ann@x.test>\r\nSubject: Rhubarb\r\nMessage-ID: <1@x>\r\n\r\nThe rhubarb is ready.\r\n"),
		[]byte("From: Bob <bob@x.test>\r\nSubject: Re: Rhubarb\r\nMessage-ID: <2@x>\r\n\r\nSo are the beans.\r\n"),
	}
	for _, sql := range []string{
		string(schema1),
		"CREATE TABLE schema_version (version integer NOT NULL)",
		"INSERT INTO schema_version VALUES (1)",
		"INSERT INTO meta VALUES ('secret', 'sssssssssssssssssssssssssssssss')",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, "INSERT INTO lists (address, incarnation, data, seq) VALUES ($1, 7, $2, 2)", list, data); err != nil {
		t.Fatal(err)
	}
	for i, raw := range raws {
		meta, err := json.Marshal(store.Post{Seq: uint64(i + 1), MessageID: fmt.Sprintf("%d@x", i+1), Thread: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO posts VALUES ($1, $2, $3, $4, $5)", list, i+1, fmt.Sprintf("%d@x", i+1), meta, raw); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close(ctx)

	db, err := postgres.Open(dsn)
	if err != nil {
		t.Fatalf("open a schema-1 database: %v", err)
	}
	defer db.Close()
	if indexed(t, db, list) {
		t.Error("the index of an archive from schema 1 says it is complete")
	}
	if err := db.View(func(tx store.Tx) error {
		if _, ok, err := tx.SearchSubstrings(list, "rhubarb"); ok || err != nil {
			t.Errorf("SearchSubstrings narrows with an incomplete index (%v)", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A post archived and indexed now, then the rest indexed as reindex does.
	third := []byte("From: Cy <cy@x.test>\r\nSubject: Rhubarb pie\r\nMessage-ID: <3@x>\r\n\r\nWho wants pie?\r\n")
	if err := db.Update(func(tx store.Tx) error {
		p, err := tx.AppendPost(list, store.Post{MessageID: "3@x"}, third)
		if err != nil {
			return err
		}
		return tx.IndexPost(list, p.Seq, store.NewSearchDoc(third).For(p))
	}); err != nil {
		t.Fatal(err)
	}
	if got := searchFor(t, db, list, "rhubarb"); !slices.Equal(got, []uint64{3}) || indexed(t, db, list) {
		t.Errorf("before reindexing: rhubarb finds %v, complete %v", got, indexed(t, db, list))
	}
	if err := db.Update(func(tx store.Tx) error {
		if err := tx.ClearSearch(list); err != nil {
			return err
		}
		return tx.PostsAfter(list, 0, func(p store.Post, raw []byte) error {
			return tx.IndexPost(list, p.Seq, store.NewSearchDoc(raw).For(p))
		})
	}); err != nil {
		t.Fatal(err)
	}
	if got := searchFor(t, db, list, "rhubarb"); !slices.Equal(got, []uint64{3, 2, 1}) || !indexed(t, db, list) {
		t.Errorf("after reindexing: rhubarb finds %v, complete %v", got, indexed(t, db, list))
	}
	if got := searchFor(t, db, list, "beans -from:ann"); !slices.Equal(got, []uint64{2}) {
		t.Errorf("beans -from:ann finds %v", got)
	}
}

// TestIndexCountedRightAcrossNodes: two nodes archive and index posts to one list at once
// (their transactions conflict on the list's counter row and are run again); posts indexed
// twice and unindexed on the way. The index ends complete, each post found once, and the
// count it is judged complete by agrees with the archive.
func TestIndexCountedRightAcrossNodes(t *testing.T) {
	dsn := pgtest.DSN(t)
	nodes := openNodes(t, dsn, 2)
	const list = "crew@x.test"
	if err := nodes[0].Update(func(tx store.Tx) error { return tx.CreateList(store.List{Address: list}) }); err != nil {
		t.Fatal(err)
	}
	const each = 40
	var wg sync.WaitGroup
	for n, db := range nodes {
		for w := range 4 {
			wg.Go(func() {
				for i := range each / 4 {
					id := fmt.Sprintf("n%dw%di%d@x", n, w, i)
					err := db.Update(func(tx store.Tx) error {
						p, err := tx.AppendPost(list, store.Post{MessageID: id}, []byte("x"))
						if err != nil {
							return err
						}
						doc := store.SearchDoc{Own: "common " + fmt.Sprintf("node%d", n)}
						if err := tx.IndexPost(list, p.Seq, doc); err != nil {
							return err
						}
						if i%3 == 0 { // indexed again: replaced, not counted twice
							return tx.IndexPost(list, p.Seq, doc)
						}
						if i%5 == 1 { // out and back in
							if err := tx.UnindexPost(list, p.Seq); err != nil {
								return err
							}
							return tx.IndexPost(list, p.Seq, doc)
						}
						return nil
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	var want []uint64
	for seq := uint64(2 * each); seq >= 1; seq-- {
		want = append(want, seq)
	}
	if got := searchFor(t, nodes[1], list, "common"); !slices.Equal(got, want) {
		t.Fatalf("common finds %v, want each of the %d posts once, newest first", got, 2*each)
	}
	if len(searchFor(t, nodes[0], list, "node0")) != each || len(searchFor(t, nodes[0], list, "node1")) != each {
		t.Error("each node's posts are not all found")
	}
	if !indexed(t, nodes[0], list) {
		t.Error("the index is not complete after every post was indexed")
	}
	if err := nodes[1].Update(func(tx store.Tx) error { return tx.UnindexPost(list, 5) }); err != nil {
		t.Fatal(err)
	}
	if indexed(t, nodes[0], list) {
		t.Error("the index is complete with a post out of it")
	}
}

// corpusDocs are n search documents made from the corpus's list mail (threads/ and mime/),
// each with a line of words drawn from a Zipf distribution over 50,000 made-up words at the
// top, dates spread over four years, and every fourth post in the thread of an earlier one:
// what store's BenchmarkSearchArchive indexes, as documents.
func corpusDocs(t testing.TB, n int) ([][]byte, []store.SearchDoc) {
	var base [][]byte
	for _, f := range mailtest.Corpus(t, "threads", "mime") {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		base = append(base, mailtest.SMTPForm(raw))
	}
	r := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(r, 1.1, 1, 49999)
	start := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)
	raws := make([][]byte, n)
	docs := make([]store.SearchDoc, n)
	for i := range n {
		raw := base[i%len(base)]
		if head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n")); ok {
			var line strings.Builder
			for range 12 {
				line.WriteString(madeUpWord(zipf.Uint64()) + " ")
			}
			raw = slices.Concat(head, []byte("\r\n\r\n"), []byte(line.String()+"\r\n\r\n"), body)
		}
		raws[i] = raw
		docs[i] = store.NewSearchDoc(raw)
		docs[i].Date = start.Add(time.Duration(i) * 4 * 365 * 24 * time.Hour / time.Duration(n))
		if i%4 == 3 {
			docs[i].Thread = uint64(r.IntN(i) + 1)
		}
	}
	return raws, docs
}

// madeUpWord is made-up word k: letters, 3 to 9 of them.
func madeUpWord(k uint64) string {
	const letters = "etaoinshrdlucmfwypvbgkqjxz"
	w := []byte{}
	for k > 0 || len(w) < 3 {
		w = append(w, letters[k%26])
		k /= 26
	}
	return string(w)
}

// archiveDocs archives raws into list of db, each indexed as its doc says, per transactions
// of batch posts.
func archiveDocs(t testing.TB, db store.Backend, list string, raws [][]byte, docs []store.SearchDoc, batch int) {
	if err := db.Update(func(tx store.Tx) error { return tx.CreateList(store.List{Address: list}) }); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(raws); i += batch {
		if err := db.Update(func(tx store.Tx) error {
			for j := i; j < min(i+batch, len(raws)); j++ {
				p, err := tx.AppendPost(list, store.Post{MessageID: fmt.Sprintf("%d@corpus", j), Thread: docs[j].Thread, Date: docs[j].Date}, raws[j])
				if err != nil {
					return err
				}
				if err := tx.IndexPost(list, p.Seq, docs[j].For(p)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// corpusQueries are searches of every kind of term.
var corpusQueries = []string{
	"the", "patch", "notmuch", madeUpWord(3), madeUpWord(40), madeUpWord(900), madeUpWord(5) + " " + madeUpWord(7),
	`"the patch"`, `"signed off by"`, `"` + madeUpWord(2) + " " + madeUpWord(3) + `"`, "from:gmail", "from:gmail.com the",
	"has:attachment", "has:attachment pdf", "before:2023-01-01 patch", "after:2025-06-01 the", "kernel -patch",
	"in:quotes wrote", `in:quotes "on wed"`, "subject:re", "subject:\"re: \" -the", `-"the"`, "-from:gmail after:2025-01-01",
	"zzzznotthere", "café", "Ünïcödé", "2024",
}

// TestSearchAnswersAsBbolt: the corpus's mail, 1,100 posts of it (bbolt's index then has two
// full segments and posts waiting for the third) with threads merged after, archived and
// indexed on bbolt and on PostgreSQL: every query of every kind finds the same posts in the
// same conversations, in the same order, with the same lines, with and without a limit on
// the conversations; IMAP's substring searches narrow to the same posts.
func TestSearchAnswersAsBbolt(t *testing.T) {
	pg := open(t)
	raws, docs := corpusDocs(t, 1100)
	bolt, err := store.OpenFile(filepath.Join(t.TempDir(), "crewmail.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	const list = "corpus@x.test"
	for _, db := range []store.Backend{bolt, pg} {
		archiveDocs(t, db, list, raws, docs, 100)
		// Merges after indexing: hits name the thread merged into.
		if err := db.Update(func(tx store.Tx) error {
			for _, pair := range [][2]int{{10, 500}, {3, 1000}, {500, 1099}} {
				for _, seq := range pair {
					if err := tx.IndexThread(list, uint64(seq), []string{fmt.Sprintf("%d@corpus", seq-1)}, "", time.Time{}); err != nil {
						return err
					}
				}
				if _, err := tx.FindThread(list, []string{fmt.Sprintf("%d@corpus", pair[0]-1), fmt.Sprintf("%d@corpus", pair[1]-1)}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	answers := func(db store.Backend) []string {
		var out []string
		if err := db.View(func(tx store.Tx) error {
			out = out[:0]
			for _, query := range corpusQueries {
				q, err := searchq.Parse(query)
				if err != nil {
					return err
				}
				for _, limit := range []int{0, 3, 10} {
					if err := tx.SearchPosts(list, q, limit, func(h store.Hit) error {
						out = append(out, fmt.Sprintf("%s|%d: %d %d %s %q", query, limit, h.Seq, h.Thread, h.Date, h.Lines))
						return nil
					}); err != nil {
						return err
					}
				}
			}
			for _, text := range []string{"ello", "PATCH v2", "gmail.com", "ü", "2024", "x-mailer", "boundary"} {
				seqs, ok, err := tx.SearchSubstrings(list, text)
				if err != nil {
					return err
				}
				out = append(out, fmt.Sprintf("substrings %q: %v %v", text, ok, seqs))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want, got := answers(bolt), answers(pg)
	if len(want) < 1000 {
		t.Fatalf("bbolt answers only %d lines: the queries find too little to compare", len(want))
	}
	if !slices.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("PostgreSQL answers differ from bbolt's at line %d:\n got %s\nwant %s\n(%d lines, want %d)", i, got[i], want[i], len(got), len(want))
			}
		}
		t.Fatalf("PostgreSQL answers %d lines, bbolt %d", len(got), len(want))
	}
	t.Logf("%d lines of answers alike", len(want))
}
