package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

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
	var nodes []*postgres.DB
	for range 2 {
		db, err := postgres.Open(dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		nodes = append(nodes, db)
	}
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
