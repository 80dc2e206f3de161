package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"crewmail/store"
	"crewmail/store/postgres"
	"crewmail/store/postgres/pgtest"
)

// TestConcurrentUpdatesOfOneRowBothSucceed: two updates on two nodes (a node's own updates
// share its transactions, so they never conflict) read the same list and both write it back
// with an owner added. PostgreSQL refuses the second commit (serialization failure); Update
// runs it again, unseen by the caller, and neither owner is lost.
func TestConcurrentUpdatesOfOneRowBothSucceed(t *testing.T) {
	dsn := pgtest.DSN(t)
	nodes := openNodes(t, dsn, 2)
	db := nodes[0]
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
			errs[i] = nodes[i].Update(func(tx store.Tx) error {
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
	nodes := openNodes(t, dsn, 2)
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

// TestJobLockHeldByOneTransaction: while one transaction holds a job's lock, another (on
// another node) does not get it; once the first ends, it does.
func TestJobLockHeldByOneTransaction(t *testing.T) {
	dsn := pgtest.DSN(t)
	nodes := openNodes(t, dsn, 2)
	held, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- nodes[0].Update(func(tx store.Tx) error {
			got, err := store.TryJob(tx, "digest crew@x.test")
			if err != nil || !got {
				return fmt.Errorf("the first transaction did not get the lock: %v", err)
			}
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	try := func() bool {
		var got bool
		if err := nodes[1].Update(func(tx store.Tx) (err error) {
			got, err = store.TryJob(tx, "digest crew@x.test")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if try() {
		t.Error("a second node got the job's lock while the first held it")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !try() {
		t.Error("the job's lock was not free once the first transaction ended")
	}
}

// TestLeasesBelongToTheirNode: node A claims the due deliveries and stops answering (as if it
// died). Node B starting does not take them (ReleaseLeases releases B's own: none); once A's
// lease has run out, B claims and delivers them.
func TestLeasesBelongToTheirNode(t *testing.T) {
	dsn := pgtest.DSN(t)
	nodes := openNodes(t, dsn, 2)
	a, b := nodes[0], nodes[1]
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	if err := a.Update(func(tx store.Tx) error {
		for i := range 3 {
			if _, err := tx.Enqueue(store.Delivery{To: fmt.Sprintf("m%d@x.test", i), Due: now, Created: now}); err != nil {
				return err
			}
		}
		claimed, err := tx.ClaimDue(now, 10*time.Minute, 10)
		if len(claimed) != 3 {
			t.Errorf("node A claimed %d deliveries, want 3", len(claimed))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	claim := func(at time.Time) (released int, claimed []store.Delivery) {
		t.Helper()
		if err := b.Update(func(tx store.Tx) (err error) {
			if released, err = tx.ReleaseLeases(at); err != nil {
				return err
			}
			claimed, err = tx.ClaimDue(at, 10*time.Minute, 10)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return released, claimed
	}
	if released, claimed := claim(now.Add(time.Minute)); released != 0 || len(claimed) != 0 {
		t.Fatalf("node B at start released %d of A's leases and claimed %d of its deliveries; want none", released, len(claimed))
	}
	_, claimed := claim(now.Add(11 * time.Minute))
	if len(claimed) != 3 {
		t.Fatalf("after A's lease ran out node B claimed %d deliveries, want 3", len(claimed))
	}
	for _, d := range claimed {
		if d.Attempts != 2 {
			t.Errorf("delivery to %s: %d attempts recorded, want 2 (A's and B's)", d.To, d.Attempts)
		}
	}
	if err := b.Update(func(tx store.Tx) error {
		for _, d := range claimed {
			if err := tx.Delivered(d); err != nil {
				return err
			}
		}
		n, err := tx.ReleaseLeases(now.Add(12 * time.Minute))
		if n != 0 {
			t.Errorf("node B released %d leases after delivering everything it claimed", n)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestWatchHearsOtherNodesCommits: node A is told of what node B commits — a post, a member's
// flags, deliveries — once each at B's commit, nothing of a transaction B rolled back, and
// nothing of its own commits (it knows those already).
func TestWatchHearsOtherNodesCommits(t *testing.T) {
	dsn := pgtest.DSN(t)
	nodes := openNodes(t, dsn, 2)
	a, b := nodes[0], nodes[1]
	heard := make(chan store.Change, 16)
	a.Watch(func(c store.Change) { heard <- c })
	const list = "crew@x.test"
	update := func(db *postgres.DB, fn func(tx store.Tx) error) error {
		t.Helper()
		return db.Update(fn)
	}
	if err := update(a, func(tx store.Tx) error { // A's own: not told back
		if err := tx.CreateList(store.List{Address: list}); err != nil {
			return err
		}
		_, err := tx.AppendPost(list, store.Post{MessageID: "own@x"}, []byte("x"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := update(b, func(tx store.Tx) error { // rolled back: not told
		if _, err := tx.AppendPost(list, store.Post{MessageID: "gone@x"}, []byte("x")); err != nil {
			return err
		}
		return errors.New("changed my mind")
	}); err == nil {
		t.Fatal("the update that failed was committed")
	}
	if err := update(b, func(tx store.Tx) error {
		if _, err := tx.AppendPost(list, store.Post{MessageID: "b@x"}, []byte("x")); err != nil {
			return err
		}
		if err := tx.SetFlags(list, 7, 1, store.FlagSeen); err != nil {
			return err
		}
		_, err := tx.Enqueue(store.Delivery{To: "m@x.test"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := map[store.Change]bool{
		{Kind: store.ChangePost, List: list}:             true,
		{Kind: store.ChangeFlags, List: list, Member: 7}: true,
		{Kind: store.ChangeOutbox}:                       true,
	}
	deadline := time.After(time.Minute) // a failing test ends; no claim about speed
	for len(want) > 0 {
		select {
		case c := <-heard:
			if !want[c] {
				t.Fatalf("node A was told %+v, which it should not have been (still waiting for %v)", c, want)
			}
			delete(want, c)
		case <-deadline:
			t.Fatalf("node A never heard of %v", want)
		}
	}
	// A mark that nothing else was told: one more commit of B, and it is the next thing heard.
	if err := update(b, func(tx store.Tx) error { return tx.SetFlags(list, 8, 1, store.FlagSeen) }); err != nil {
		t.Fatal(err)
	}
	if c := <-heard; c != (store.Change{Kind: store.ChangeFlags, List: list, Member: 8}) {
		t.Fatalf("after B's commits node A heard %+v", c)
	}
}

// TestMultiHostDSNFindsTheServerThatTakesWrites: a DSN naming a host that does not answer
// first and the real server second, with target_session_attrs=read-write, opens (as after a
// failover, when the old primary is gone).
func TestMultiHostDSNFindsTheServerThatTakesWrites(t *testing.T) {
	dsn := pgtest.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Skipf("%s is not a URL; this test builds a multi-host URL from it", pgtest.Env)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port that refuses: bound, then closed
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	u.Host = dead + "," + u.Host
	q := u.Query()
	q.Set("target_session_attrs", "read-write")
	u.RawQuery = q.Encode()
	db, err := postgres.Open(u.String())
	if err != nil {
		t.Fatalf("open %s: %v", u.Redacted(), err)
	}
	defer db.Close()
	if err := db.Update(func(tx store.Tx) error { return tx.CreateList(store.List{Address: "crew@x.test"}) }); err != nil {
		t.Fatal(err)
	}
}

// TestIncarnationInsideManyUpdates: tokens are made inside update functions, and making one
// asks the list's incarnation. With more concurrent updates than the pool has connections,
// each holding one, asking through the same pool would wait for good; every update ends.
func TestIncarnationInsideManyUpdates(t *testing.T) {
	db := open(t)
	const list = "crew@x.test"
	if err := db.Update(func(tx store.Tx) error { return tx.CreateList(store.List{Address: list}) }); err != nil {
		t.Fatal(err)
	}
	want := db.Incarnation(list)
	var wg sync.WaitGroup
	errs := make([]error, 64)
	for i := range errs {
		wg.Go(func() {
			errs[i] = db.Update(func(tx store.Tx) error {
				if _, err := tx.List(list); err != nil {
					return err
				}
				if got := db.Incarnation(list); got != want {
					return fmt.Errorf("incarnation %d inside an update, want %d", got, want)
				}
				// A list not asked about before: the database is asked.
				if got := db.Incarnation(fmt.Sprintf("other%d@x.test", i)); got != 0 {
					return fmt.Errorf("incarnation %d of a list that is not there", got)
				}
				return tx.SetFlags(list, uint64(i+1), 1, store.FlagSeen)
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// openNodes opens n backends on the database at dsn, as n crewmail nodes would, closed when the
// test ends.
func openNodes(t *testing.T, dsn string, n int) []*postgres.DB {
	t.Helper()
	nodes := make([]*postgres.DB, n)
	for i := range nodes {
		db, err := postgres.Open(dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		nodes[i] = db
	}
	return nodes
}
