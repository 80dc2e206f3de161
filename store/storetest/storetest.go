// Package storetest is the conformance suite of crewmail's store: what every backend of
// store.Backend must do, whatever keeps the records. A backend's own test calls Run with a
// function that opens an empty database of its kind; bbolt's does (store's conformance test),
// and a second backend passes the same suite before the server runs on it.
//
// What only one backend has — its file, schema migrations, memory map, backups, what a damaged
// page does — is tested beside that backend, not here.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"crewmail/store"
)

// Run runs the suite, each test on a database of its own that open returns empty (and closes
// when t ends).
func Run(t *testing.T, open func(t *testing.T) store.Backend) {
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, s store.Backend)
	}{
		{"UpdatesCommitAloneAFailingOneLeavesNoTrace", updatesCommitAlone},
		{"AfterCommitRunsOnlyForWhatIsCommitted", afterCommitOnlyCommitted},
		{"DuplicateMessageIDRefusedByAppend", duplicateMessageIDRefused},
		{"OutboxClaimRetryFail", outboxClaimRetryFail},
		{"OutboxRescheduleAndDropByOperator", outboxRescheduleAndDrop},
		{"BlobsComeBackWholeAndGoWithTheirLastDelivery", blobs},
		{"PendingOnePerKindAndAddress", pendingOnePerKindAndAddress},
		{"RosterFollowsMemberChanges", rosterFollowsMemberChanges},
		{"FlagsAndAppPasswords", flagsAndAppPasswords},
		{"BouncesKeptBounded", bouncesKeptBounded},
		{"ListIncarnations", listIncarnations},
		{"MergedThreadsFollowThroughEverything", mergedThreadsFollowThroughEverything},
		{"FollowsAreTheirOwnAndFollowMerges", followsAreTheirOwnAndFollowMerges},
		{"DamagedCursorIsAnErrorNotNone", damagedCursorIsAnErrorNotNone},
		{"ChangeAddressMovesEverything", changeAddressMovesEverything},
		{"RedactedPostKeepsItsPlace", redactedPostKeepsItsPlace},
		{"WebSignInsSessionsAndLooks", webSignInsSessionsAndLooks},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
	for _, c := range searchCases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

// updatesCommitAlone: many concurrent updates (which a backend may batch into one commit, or
// retry on a conflict); one that fails gets its error and leaves no trace, and every other one
// is committed.
func updatesCommitAlone(t *testing.T, s store.Backend) {
	if err := s.Update(func(tx store.Tx) error { return tx.CreateList(store.List{Address: "crew@x.test"}) }); err != nil {
		t.Fatal(err)
	}
	const n = 200
	errBad := errors.New("bad post")
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Update(func(tx store.Tx) error {
				if _, err := tx.AppendPost("crew@x.test", store.Post{MessageID: fmt.Sprintf("%d@x", i)}, []byte("x")); err != nil {
					return err
				}
				if i%10 == 7 {
					return errBad // after writing: the write must not survive
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (i%10 == 7) != errors.Is(err, errBad) {
			t.Errorf("update %d: %v", i, err)
		}
	}
	var ids []string
	err := s.View(func(tx store.Tx) error {
		ids = ids[:0]
		return tx.Posts("crew@x.test", func(p store.Post) error {
			ids = append(ids, p.MessageID)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != n-n/10 {
		t.Fatalf("%d posts committed, want %d", len(ids), n-n/10)
	}
	for _, id := range ids {
		var i int
		fmt.Sscanf(id, "%d@x", &i)
		if i%10 == 7 {
			t.Errorf("failed update %s left its post behind", id)
		}
	}
}

// afterCommitOnlyCommitted: concurrent updates, some failing, each asking for something after
// its commit. Whatever number of times a function ran (a batch run again without the one that
// failed, a transaction retried after a conflict), what a committed one asked happens once,
// what a failed one asked never, and what a read transaction asks never.
func afterCommitOnlyCommitted(t *testing.T, s store.Backend) {
	if err := s.Update(func(tx store.Tx) error { return tx.CreateList(store.List{Address: "crew@x.test"}) }); err != nil {
		t.Fatal(err)
	}
	const n = 100
	errBad := errors.New("bad")
	var mu sync.Mutex
	after := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Update(func(tx store.Tx) error {
				tx.AfterCommit(func() {
					mu.Lock()
					after[i]++
					mu.Unlock()
				})
				if _, err := tx.AppendPost("crew@x.test", store.Post{MessageID: fmt.Sprintf("%d@x", i)}, []byte("x")); err != nil {
					return err
				}
				if i%5 == 3 {
					return errBad
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i := range n {
		want := 1
		if i%5 == 3 {
			want = 0
			if !errors.Is(errs[i], errBad) {
				t.Errorf("update %d: %v, want its own error", i, errs[i])
			}
		} else if errs[i] != nil {
			t.Errorf("update %d: %v", i, errs[i])
		}
		if after[i] != want {
			t.Errorf("update %d (err %v): what it asked after the commit ran %d times, want %d", i, errs[i], after[i], want)
		}
	}
	viewed := 0
	if err := s.View(func(tx store.Tx) error {
		tx.AfterCommit(func() { viewed++ })
		return nil
	}); err != nil || viewed != 0 {
		t.Errorf("a read transaction's after-commit ran %d times (%v), want never", viewed, err)
	}
}

func duplicateMessageIDRefused(t *testing.T, s store.Backend) {
	err := s.Update(func(tx store.Tx) error {
		if err := tx.CreateList(store.List{Address: "crew@x.test"}); err != nil {
			return err
		}
		if _, err := tx.AppendPost("crew@x.test", store.Post{MessageID: "a@x"}, []byte("1")); err != nil {
			return err
		}
		_, err := tx.AppendPost("crew@x.test", store.Post{MessageID: "a@x"}, []byte("2"))
		if !errors.Is(err, store.ErrExists) {
			t.Errorf("second append: %v, want ErrExists", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func outboxClaimRetryFail(t *testing.T, s store.Backend) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	err := s.Update(func(tx store.Tx) error {
		for i, due := range []time.Time{now.Add(-time.Minute), now, now.Add(time.Minute)} {
			if _, err := tx.Enqueue(store.Delivery{To: fmt.Sprintf("m%d@x", i), Due: due, Created: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var claimed []store.Delivery
	update := func(fn func(tx store.Tx) error) {
		t.Helper()
		if err := s.Update(fn); err != nil {
			t.Fatal(err)
		}
	}
	update(func(tx store.Tx) (err error) {
		claimed, err = tx.ClaimDue(now, 30*time.Minute, 10)
		return err
	})
	if len(claimed) != 2 || claimed[0].To != "m0@x" || claimed[1].To != "m1@x" {
		t.Fatalf("claimed %+v, want the two due rows in due order", claimed)
	}
	for _, d := range claimed {
		if d.Attempts != 1 || !d.Leased || !d.Due.Equal(now.Add(30*time.Minute)) {
			t.Errorf("claimed row %+v: want attempt recorded and leased for 30 minutes", d)
		}
	}
	// Claimed rows are not claimed again while leased.
	update(func(tx store.Tx) error {
		again, err := tx.ClaimDue(now.Add(2*time.Minute), 30*time.Minute, 10)
		if len(again) != 1 || again[0].To != "m2@x" {
			t.Errorf("second claim got %+v, want only m2", again)
		}
		return err
	})
	update(func(tx store.Tx) error { return tx.Retry(claimed[0], now.Add(5*time.Minute), "451 later") })
	update(func(tx store.Tx) error { return tx.Fail(claimed[1], now, "550 no such user") })
	update(func(tx store.Tx) error {
		var rows []store.Delivery
		if err := tx.Outbox(func(d store.Delivery) error { rows = append(rows, d); return nil }); err != nil {
			return err
		}
		var failures []store.Failure
		if err := tx.Failures(func(f store.Failure) error { failures = append(failures, f); return nil }); err != nil {
			return err
		}
		if len(rows) != 2 || rows[0].To != "m0@x" || rows[0].Leased || rows[0].LastError != "451 later" {
			t.Errorf("outbox after retry: %+v", rows)
		}
		if len(failures) != 1 || failures[0].To != "m1@x" || failures[0].Error != "550 no such user" {
			t.Errorf("failures: %+v", failures)
		}
		next, ok, err := tx.NextDue()
		if err != nil || !ok || !next.Equal(now.Add(5*time.Minute)) {
			t.Errorf("next due %v, want the retry", next)
		}
		// At start-up, the row still leased (m2) becomes due at once.
		n, err := tx.ReleaseLeases(now.Add(time.Hour))
		if n != 1 {
			t.Errorf("released %d leases, want 1", n)
		}
		return err
	})
}

// outboxRescheduleAndDrop: the operator's "retry now" moves a waiting row to a new due time
// keeping its attempts and error, "drop" takes it out and records it as failed (its shared
// message goes with it); a leased row refuses both, an unknown ID is ErrNotFound.
func outboxRescheduleAndDrop(t *testing.T, s store.Backend) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var waiting, leased, shared store.Delivery
	err := s.Update(func(tx store.Tx) (err error) {
		if waiting, err = tx.Enqueue(store.Delivery{To: "w@x", Due: now.Add(time.Hour), Created: now, Attempts: 3, LastError: "421 4.7.28 rate limited"}); err != nil {
			return err
		}
		if leased, err = tx.Enqueue(store.Delivery{To: "l@x", Due: now, Created: now}); err != nil {
			return err
		}
		blob, err := tx.PutBlob([]byte("digest"), 1)
		if err != nil {
			return err
		}
		shared, err = tx.Enqueue(store.Delivery{To: "s@x", Due: now.Add(2 * time.Hour), Created: now, Blob: blob})
		if err != nil {
			return err
		}
		_, err = tx.ClaimDue(now, time.Hour, 1) // leases the row due now
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(func(tx store.Tx) error {
		d, err := tx.Reschedule(waiting.ID, now)
		if err != nil || !d.Due.Equal(now) || d.Attempts != 3 || d.LastError != "421 4.7.28 rate limited" {
			t.Errorf("Reschedule = %+v, %v", d, err)
		}
		if next, ok, err := tx.NextDue(); err != nil || !ok || !next.Equal(now) {
			t.Errorf("next due after reschedule: %v %v %v", next, ok, err)
		}
		if _, err := tx.Reschedule(leased.ID, now); !errors.Is(err, store.ErrLeased) {
			t.Errorf("Reschedule of a leased row: %v, want ErrLeased", err)
		}
		if _, err := tx.Drop(leased.ID, now, "dropped"); !errors.Is(err, store.ErrLeased) {
			t.Errorf("Drop of a leased row: %v, want ErrLeased", err)
		}
		if _, err := tx.Reschedule(999, now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Reschedule of an unknown ID: %v, want ErrNotFound", err)
		}
		if d, err := tx.Drop(shared.ID, now, "dropped by the operator"); err != nil || d.To != "s@x" {
			t.Errorf("Drop = %+v, %v", d, err)
		}
		if _, err := tx.Blob(shared.Blob); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the dropped row's shared message is still there: %v", err)
		}
		if _, err := tx.Drop(shared.ID, now, "again"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Drop twice: %v, want ErrNotFound", err)
		}
		var failures []store.Failure
		if err := tx.Failures(func(f store.Failure) error { failures = append(failures, f); return nil }); err != nil {
			return err
		}
		if len(failures) != 1 || failures[0].To != "s@x" || failures[0].Error != "dropped by the operator" {
			t.Errorf("failures: %+v", failures)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(func(tx store.Tx) error {
		n, err := tx.OutboxSize()
		if n != 2 {
			t.Errorf("outbox holds %d rows, want 2", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// blobs: shared messages of any size come back whole, and go when the last delivery carrying
// them has been delivered or has failed.
func blobs(t *testing.T, s store.Backend) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var ids []uint64
	want := map[uint64][]byte{}
	err := s.Update(func(tx store.Tx) error {
		ids = ids[:0]
		clear(want)
		for i, n := range []int{0, 1, 1023, 1024, 1025, 4096, 100_003} {
			data := make([]byte, n)
			for j := range data {
				data[j] = byte(i + j)
			}
			id, err := tx.PutBlob(data, 2)
			if err != nil {
				return err
			}
			ids = append(ids, id)
			want[id] = data
		}
		for range 2 {
			if _, err := tx.Enqueue(store.Delivery{Blob: ids[0], To: "m@x", Due: now, Created: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(func(tx store.Tx) error {
		for id, data := range want {
			got, err := tx.Blob(id)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("blob %d of %d bytes: got %d bytes, %v", id, len(data), len(got), err)
			}
		}
		rows, err := tx.ClaimDue(now, time.Minute, 10)
		if err != nil || len(rows) != 2 {
			return fmt.Errorf("claimed %d deliveries (%v), want 2", len(rows), err)
		}
		if err := tx.Delivered(rows[0]); err != nil {
			return err
		}
		if _, err := tx.Blob(ids[0]); err != nil {
			t.Errorf("a blob went while a delivery still carries it: %v", err)
		}
		if err := tx.Fail(rows[1], now, "550 no"); err != nil {
			return err
		}
		if _, err := tx.Blob(ids[0]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a blob with no deliveries left is still there: %v", err)
		}
		if got, err := tx.Blob(ids[1]); err != nil || !bytes.Equal(got, want[ids[1]]) {
			t.Errorf("removing one blob touched another: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// pendingOnePerKindAndAddress: asking again finds the same pending action; a new one of the
// same kind replaces it; deleting removes it from both lookups.
func pendingOnePerKindAndAddress(t *testing.T, s store.Backend) {
	err := s.Update(func(tx store.Tx) error {
		if err := tx.CreateList(store.List{Address: "crew@x.test"}); err != nil {
			return err
		}
		a, err := tx.PutPending("crew@x.test", store.Pending{Kind: store.PendingJoin, Address: "a@x.test"})
		if err != nil {
			return err
		}
		if _, err := tx.PutPending("crew@x.test", store.Pending{Kind: store.PendingMode, Address: "a@x.test", Mode: "daily"}); err != nil {
			return err
		}
		got, err := tx.PendingFor("crew@x.test", store.PendingJoin, "a@x.test")
		if err != nil || got.ID != a.ID {
			t.Errorf("PendingFor = %+v, %v; want ID %d", got, err, a.ID)
		}
		b, err := tx.PutPending("crew@x.test", store.Pending{Kind: store.PendingJoin, Address: "a@x.test"})
		if err != nil {
			return err
		}
		if _, err := tx.PendingByID("crew@x.test", a.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the replaced pending action is still there: %v", err)
		}
		if err := tx.DeletePending("crew@x.test", b.ID); err != nil {
			return err
		}
		if _, err := tx.PendingFor("crew@x.test", store.PendingJoin, "a@x.test"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted pending action still found: %v", err)
		}
		n := 0
		if err := tx.PendingActions("crew@x.test", func(p store.Pending) error { n++; return nil }); err != nil {
			return err
		}
		if n != 1 {
			t.Errorf("%d pending actions left, want the mode change only", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func rosterFollowsMemberChanges(t *testing.T, s store.Backend) {
	err := s.Update(func(tx store.Tx) error {
		if err := tx.CreateList(store.List{Address: "crew@x.test"}); err != nil {
			return err
		}
		for _, a := range []string{"a@x.test", "b@x.test", "c@x.test"} {
			if _, err := tx.AddMember("crew@x.test", store.Member{Address: a, Mode: "each"}); err != nil {
				return err
			}
		}
		b, err := tx.Member("crew@x.test", "b@x.test")
		if err != nil {
			return err
		}
		b.Mode = "daily"
		if err := tx.PutMember("crew@x.test", b); err != nil {
			return err
		}
		return tx.RemoveMember("crew@x.test", "c@x.test")
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.View(func(tx store.Tx) error {
		r, err := tx.Recipients("crew@x.test")
		if err != nil || len(r) != 1 || r[0].Address != "a@x.test" || r[0].ID != 1 {
			t.Errorf("recipients: %+v %v", r, err)
		}
		return nil
	})
}

// flagsAndAppPasswords: flags are per member and post; an app password replaces the last.
func flagsAndAppPasswords(t *testing.T, s store.Backend) {
	err := s.Update(func(tx store.Tx) error {
		if err := tx.CreateList(store.List{Address: "crew@x.test"}); err != nil {
			return err
		}
		for _, f := range []struct {
			member, seq uint64
			flags       byte
		}{{1, 3, store.FlagSeen}, {1, 5, store.FlagSeen | store.FlagFlagged}, {2, 3, store.FlagFlagged}, {1, 7, store.FlagSeen}, {1, 7, 0}} {
			if err := tx.SetFlags("crew@x.test", f.member, f.seq, f.flags); err != nil {
				return err
			}
		}
		got := map[uint64]byte{}
		if err := tx.FlagsOf("crew@x.test", 1, func(seq uint64, f byte) error { got[seq] = f; return nil }); err != nil {
			return err
		}
		if len(got) != 2 || got[3] != store.FlagSeen || got[5] != store.FlagSeen|store.FlagFlagged {
			t.Errorf("member 1's flags: %v", got)
		}
		for _, h := range []string{"first", "second"} {
			if err := tx.SetAppPassword("a@x.test", store.AppPassword{Hash: []byte(h)}); err != nil {
				return err
			}
		}
		if p, err := tx.AppPasswordOf("a@x.test"); err != nil || string(p.Hash) != "second" {
			t.Errorf("app password: %q %v", p.Hash, err)
		}
		if _, err := tx.AppPasswordOf("b@x.test"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("an address without app password: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// bouncesKeptBounded: a list keeps its latest MaxBounces bounces, each cut to MaxBounceHead
// bytes.
func bouncesKeptBounded(t *testing.T, s store.Backend) {
	const list = "crew@x.test"
	big := bytes.Repeat([]byte("x"), 1<<20)
	err := s.Update(func(tx store.Tx) error {
		if err := tx.CreateList(store.List{Address: list}); err != nil {
			return err
		}
		for i := range store.MaxBounces + 20 {
			if err := tx.AddBounce(list, store.Bounce{Member: uint64(i + 1), Size: len(big), Head: big}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkBounces(t, s, list, len(big), 21)
}

// checkBounces checks that list keeps MaxBounces bounces, the oldest of member first, each a
// head of at most MaxBounceHead bytes of a message of size bytes.
func checkBounces(t *testing.T, s store.Backend, list string, size int, first uint64) {
	t.Helper()
	var n int
	err := s.View(func(tx store.Tx) error {
		n = 0
		return tx.Bounces(list, func(b store.Bounce) error {
			if n == 0 && b.Member != first {
				t.Errorf("the oldest bounce kept is of member %d, want %d", b.Member, first)
			}
			if len(b.Head) > store.MaxBounceHead || b.Size != size {
				t.Errorf("a bounce keeps %d bytes of %d", len(b.Head), b.Size)
			}
			n++
			return nil
		})
	})
	if err != nil || n != store.MaxBounces {
		t.Errorf("%d bounces kept (%v), want %d", n, err, store.MaxBounces)
	}
}

// listIncarnations: every new list gets a random incarnation, another one when created again at
// the same address; Backend.Incarnation follows what is committed; settings changes keep it.
func listIncarnations(t *testing.T, s store.Backend) {
	const list = "crew@x.test"
	create := func() uint64 {
		t.Helper()
		if err := s.Update(func(tx store.Tx) error { return tx.CreateList(store.List{Address: list}) }); err != nil {
			t.Fatal(err)
		}
		inc := s.Incarnation(list)
		if err := s.View(func(tx store.Tx) error {
			l, err := tx.List(list)
			if err == nil && (l.Incarnation != inc || inc == 0) {
				t.Errorf("incarnation %d stored, %d known", l.Incarnation, inc)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return inc
	}
	first := create()
	if err := s.Update(func(tx store.Tx) error { return tx.PutList(store.List{Address: list, Name: "renamed"}) }); err != nil {
		t.Fatal(err)
	}
	if s.Incarnation(list) != first {
		t.Errorf("a settings change made the incarnation %d, want %d", s.Incarnation(list), first)
	}
	// A creation that is rolled back changes nothing.
	if err := s.Update(func(tx store.Tx) error {
		if err := tx.DeleteList(list); err != nil {
			return err
		}
		if err := tx.CreateList(store.List{Address: list}); err != nil {
			return err
		}
		return errors.New("changed my mind")
	}); err == nil || s.Incarnation(list) != first {
		t.Fatalf("after a rolled-back re-creation: %v, incarnation %d, want %d", err, s.Incarnation(list), first)
	}
	if err := s.Update(func(tx store.Tx) error { return tx.DeleteList(list) }); err != nil || s.Incarnation(list) != 0 {
		t.Fatalf("after removal: %v, incarnation %d", err, s.Incarnation(list))
	}
	if second := create(); second == first {
		t.Errorf("the list created again has the old incarnation %d", first)
	}
}
