package postgres_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"crewmail/store"
	"crewmail/store/postgres"
	"crewmail/store/postgres/pgtest"
)

// TestConcurrentUpdatesOfOneRowBothSucceed: two updates read the same list and both write it
// back with an owner added. PostgreSQL refuses the second commit (serialization failure);
// Update runs it again, unseen by the caller, and neither owner is lost.
func TestConcurrentUpdatesOfOneRowBothSucceed(t *testing.T) {
	db := open(t)
	const list = "crew@x.test"
	if err := db.Update(func(tx store.Tx) error { return tx.CreateList(store.List{Address: list}) }); err != nil {
		t.Fatal(err)
	}
	var read sync.WaitGroup // both have read the list before either writes
	read.Add(2)
	var runs atomic.Int32
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, owner := range []string{"ann@x.test", "bob@x.test"} {
		wg.Go(func() {
			first := true
			errs[i] = db.Update(func(tx store.Tx) error {
				runs.Add(1)
				l, err := tx.List(list)
				if err != nil {
					return err
				}
				if first {
					first = false
					read.Done()
					read.Wait()
				}
				l.Owners = append(l.Owners, owner)
				return tx.PutList(l)
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("update %d: %v", i, err)
		}
	}
	if runs.Load() < 3 {
		t.Errorf("the functions ran %d times: no conflict happened, the test proves nothing", runs.Load())
	}
	var owners []string
	if err := db.View(func(tx store.Tx) error {
		l, err := tx.List(list)
		owners = l.Owners
		return err
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(owners)
	if !slices.Equal(owners, []string{"ann@x.test", "bob@x.test"}) {
		t.Errorf("owners %v, want both", owners)
	}
}

// TestArchiveSequenceGapFreeAcrossNodes: two nodes (two pools on one database) append to one
// list at once; the sequences are 1…n without a gap or a repeat.
func TestArchiveSequenceGapFreeAcrossNodes(t *testing.T) {
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
	const n = 60
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = nodes[i%2].Update(func(tx store.Tx) error {
				_, err := tx.AppendPost(list, store.Post{MessageID: strings.Repeat("x", i+1) + "@x"}, []byte("x"))
				return err
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	if err := nodes[1].View(func(tx store.Tx) error {
		return tx.Posts(list, func(p store.Post) error { seqs = append(seqs, p.Seq); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("sequences %v: not 1…%d", seqs, n)
		}
	}
	if len(seqs) != n {
		t.Fatalf("%d posts, want %d", len(seqs), n)
	}
}

// TestNewerSchemaRefused: a database migrated by a newer crewmail is refused with one
// sentence naming both versions.
func TestNewerSchemaRefused(t *testing.T) {
	dsn := pgtest.DSN(t)
	db, err := postgres.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "UPDATE schema_version SET version = version + 1"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	_, err = postgres.Open(dsn)
	if err == nil || !strings.Contains(err.Error(), "use a newer crewmail") {
		t.Fatalf("opening a newer database: %v", err)
	}
}
