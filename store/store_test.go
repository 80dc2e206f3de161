package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"crewmail/internal/vocab"
)

func openTest(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func TestReopenKeepsEverythingAndTheSecret(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	secret := append([]byte(nil), s.Secret()...)
	err = s.Update(func(tx Tx) error {
		if err := tx.CreateList(List{Address: "crew@x.test", Name: "crew"}); err != nil {
			return err
		}
		_, err := tx.AppendPost("crew@x.test", Post{MessageID: "a@x"}, []byte("raw"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if string(s.Secret()) != string(secret) || len(secret) != 32 {
		t.Error("the server secret changed across a restart")
	}
	err = s.View(func(tx Tx) error {
		p, raw, err := tx.Post("crew@x.test", 1)
		if err != nil {
			return err
		}
		if string(raw) != "raw" || p.MessageID != "a@x" || p.Thread != 1 || p.Size != 3 {
			t.Errorf("post after reopen: %+v %q", p, raw)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSecondProcessIsLockedOut(t *testing.T) {
	_, dir := openTest(t)
	_, err := Open(dir)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Pretend a newer crewmail wrote the file.
	err = s.db.Update(func(tx *bolt.Tx) error {
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, SchemaVersion+1)
		return tx.Bucket(bucketMeta).Put(keyVersion, v)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(dir)
	if err == nil || !strings.Contains(err.Error(), "use a newer crewmail") || !strings.Contains(err.Error(), FileName) {
		t.Fatalf("Open of a newer file: %v", err)
	}
}

func TestNotADatabaseRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/"+FileName, []byte(strings.Repeat("garbage!", 1024)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), FileName) || !strings.Contains(err.Error(), "restore it from a backup") {
		t.Fatalf("Open of a damaged file: %v", err)
	}
}

// TestGroupCommitIsolatesFailures: many concurrent updates share commits; one that fails gets
// its error and leaves no trace, and every other one is committed.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s, _ := openTest(t)
	if err := s.Update(func(tx Tx) error { return tx.CreateList(List{Address: "crew@x.test"}) }); err != nil {
		t.Fatal(err)
	}
	const n = 200
	errBad := errors.New("bad post")
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Update(func(tx Tx) error {
				if _, err := tx.AppendPost("crew@x.test", Post{MessageID: fmt.Sprintf("%d@x", i)}, []byte("x")); err != nil {
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
	err := s.View(func(tx Tx) error {
		return tx.Posts("crew@x.test", func(p Post) error {
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

func TestDuplicateMessageIDRefusedByAppend(t *testing.T) {
	s, _ := openTest(t)
	err := s.Update(func(tx Tx) error {
		if err := tx.CreateList(List{Address: "crew@x.test"}); err != nil {
			return err
		}
		if _, err := tx.AppendPost("crew@x.test", Post{MessageID: "a@x"}, []byte("1")); err != nil {
			return err
		}
		_, err := tx.AppendPost("crew@x.test", Post{MessageID: "a@x"}, []byte("2"))
		if !errors.Is(err, ErrExists) {
			t.Errorf("second append: %v, want ErrExists", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOutboxClaimRetryFail(t *testing.T) {
	s, _ := openTest(t)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	err := s.Update(func(tx Tx) error {
		for i, due := range []time.Time{now.Add(-time.Minute), now, now.Add(time.Minute)} {
			if _, err := tx.Enqueue(Delivery{To: fmt.Sprintf("m%d@x", i), Due: due, Created: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var claimed []Delivery
	update := func(fn func(tx Tx) error) {
		t.Helper()
		if err := s.Update(fn); err != nil {
			t.Fatal(err)
		}
	}
	update(func(tx Tx) (err error) {
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
	update(func(tx Tx) error {
		again, err := tx.ClaimDue(now.Add(2*time.Minute), 30*time.Minute, 10)
		if len(again) != 1 || again[0].To != "m2@x" {
			t.Errorf("second claim got %+v, want only m2", again)
		}
		return err
	})
	update(func(tx Tx) error { return tx.Retry(claimed[0], now.Add(5*time.Minute), "451 later") })
	update(func(tx Tx) error { return tx.Fail(claimed[1], now, "550 no such user") })
	update(func(tx Tx) error {
		var rows []Delivery
		if err := tx.Outbox(func(d Delivery) error { rows = append(rows, d); return nil }); err != nil {
			return err
		}
		var failures []Failure
		if err := tx.Failures(func(f Failure) error { failures = append(failures, f); return nil }); err != nil {
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

// BenchmarkGroupCommit measures durable posts per second with 16 concurrent writers, each
// post archived with 8 outbox rows, as an SMTP DATA does.
func BenchmarkGroupCommit(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(func(tx Tx) error { return tx.CreateList(List{Address: "crew@x.test"}) }); err != nil {
		b.Fatal(err)
	}
	raw := []byte(strings.Repeat("x", 4096))
	var seq sync.Mutex
	next := 0
	b.SetParallelism(8) // × GOMAXPROCS(2) = 16 writers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			seq.Lock()
			next++
			id := fmt.Sprintf("%d@x", next)
			seq.Unlock()
			err := s.Update(func(tx Tx) error {
				p, err := tx.AppendPost("crew@x.test", Post{MessageID: id}, raw)
				if err != nil {
					return err
				}
				for m := range 8 {
					if _, err := tx.Enqueue(Delivery{List: "crew@x.test", Seq: p.Seq, To: fmt.Sprintf("m%d@x", m)}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Error(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "posts/s")
}

// TestMigrationFromSchema1 opens a file laid out as schema 1 (lists without held posts or a
// roster) and finds it migrated: the current version, every list able to hold posts, its
// roster built from its members.
func TestMigrationFromSchema1(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Make it a schema-1 file with a list as schema 1 made it.
	err = s.db.Update(func(tx *bolt.Tx) error {
		l, err := tx.Bucket(bucketLists).CreateBucket([]byte("old@x.test"))
		if err != nil {
			return err
		}
		for _, name := range [][]byte{subMembers, subMemberIDs, subArchive, subPosts, subMsgIDs, subBounces} {
			if _, err := l.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := putJSON(l, keyConfig, List{Address: "old@x.test"}); err != nil {
			return err
		}
		for i, mode := range []vocab.Mode{"each", "daily", "each"} {
			m := Member{Address: fmt.Sprintf("m%d@x.test", i), ID: uint64(i + 1), Mode: mode}
			if err := putJSON(l.Bucket(subMembers), []byte(m.Address), m); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyVersion, u64(1))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Update(func(tx Tx) error {
		if v := binary.BigEndian.Uint64(tx.(*boltTx).tx.Bucket(bucketMeta).Get(keyVersion)); v != SchemaVersion {
			t.Errorf("schema version %d after migration", v)
		}
		rcpts, err := tx.Recipients("old@x.test")
		if err != nil || len(rcpts) != 2 || rcpts[0] != (Recipient{1, "m0@x.test"}) || rcpts[1] != (Recipient{3, "m2@x.test"}) {
			t.Errorf("recipients after migration: %+v %v", rcpts, err)
		}
		h, err := tx.Hold("old@x.test", Held{From: "a@x.test", Raw: []byte("x")})
		if err != nil {
			return err
		}
		got, err := tx.HeldPost("old@x.test", h.ID)
		if err != nil || string(got.Raw) != "x" {
			t.Errorf("held post after migration: %+v %v", got, err)
		}
		if err := tx.Release("old@x.test", h.ID); err != nil {
			return err
		}
		p, err := tx.PutPending("old@x.test", Pending{Kind: PendingJoin, Address: "new@x.test"})
		if err != nil {
			t.Errorf("pending action after migration: %v", err)
			return nil
		}
		if got, err := tx.PendingFor("old@x.test", PendingJoin, "new@x.test"); err != nil || got.ID != p.ID {
			t.Errorf("pending action after migration: %+v %v", got, err)
		}
		// Threads: two posts, then a reply to both merges their threads.
		for i := 1; i <= 2; i++ {
			post, err := tx.AppendPost("old@x.test", Post{MessageID: fmt.Sprintf("t%d@x.test", i)}, []byte("x"))
			if err != nil {
				return err
			}
			if err := tx.IndexThread("old@x.test", post.Thread, []string{post.MessageID}, "", time.Time{}); err != nil {
				return err
			}
		}
		if th, err := tx.FindThread("old@x.test", []string{"t2@x.test", "t1@x.test"}); err != nil || th != 2 {
			t.Errorf("merging threads after migration: %d %v", th, err)
		}
		if post, err := tx.PostMeta("old@x.test", 2); err != nil || post.Thread != 1 {
			t.Errorf("the merged post after migration: %+v %v", post, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPendingOnePerKindAndAddress: asking again finds the same pending action; a new one of the
// same kind replaces it; deleting removes it from both lookups.
func TestPendingOnePerKindAndAddress(t *testing.T) {
	s, _ := openTest(t)
	err := s.Update(func(tx Tx) error {
		if err := tx.CreateList(List{Address: "crew@x.test"}); err != nil {
			return err
		}
		a, err := tx.PutPending("crew@x.test", Pending{Kind: PendingJoin, Address: "a@x.test"})
		if err != nil {
			return err
		}
		if _, err := tx.PutPending("crew@x.test", Pending{Kind: PendingMode, Address: "a@x.test", Mode: "daily"}); err != nil {
			return err
		}
		got, err := tx.PendingFor("crew@x.test", PendingJoin, "a@x.test")
		if err != nil || got.ID != a.ID {
			t.Errorf("PendingFor = %+v, %v; want ID %d", got, err, a.ID)
		}
		b, err := tx.PutPending("crew@x.test", Pending{Kind: PendingJoin, Address: "a@x.test"})
		if err != nil {
			return err
		}
		if _, err := tx.PendingByID("crew@x.test", a.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("the replaced pending action is still there: %v", err)
		}
		if err := tx.DeletePending("crew@x.test", b.ID); err != nil {
			return err
		}
		if _, err := tx.PendingFor("crew@x.test", PendingJoin, "a@x.test"); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted pending action still found: %v", err)
		}
		n := 0
		if err := tx.PendingActions("crew@x.test", func(p Pending) error { n++; return nil }); err != nil {
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

func TestRosterFollowsMemberChanges(t *testing.T) {
	s, _ := openTest(t)
	err := s.Update(func(tx Tx) error {
		if err := tx.CreateList(List{Address: "crew@x.test"}); err != nil {
			return err
		}
		for _, a := range []string{"a@x.test", "b@x.test", "c@x.test"} {
			if _, err := tx.AddMember("crew@x.test", Member{Address: a, Mode: "each"}); err != nil {
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
	_ = s.View(func(tx Tx) error {
		r, err := tx.Recipients("crew@x.test")
		if err != nil || len(r) != 1 || r[0].Address != "a@x.test" || r[0].ID != 1 {
			t.Errorf("recipients: %+v %v", r, err)
		}
		return nil
	})
}

// TestFlagsAndAppPasswords: flags are per member and post; an app password replaces the last.
func TestFlagsAndAppPasswords(t *testing.T) {
	s, _ := openTest(t)
	err := s.Update(func(tx Tx) error {
		if err := tx.CreateList(List{Address: "crew@x.test"}); err != nil {
			return err
		}
		for _, f := range []struct {
			member, seq uint64
			flags       byte
		}{{1, 3, FlagSeen}, {1, 5, FlagSeen | FlagFlagged}, {2, 3, FlagFlagged}, {1, 7, FlagSeen}, {1, 7, 0}} {
			if err := tx.SetFlags("crew@x.test", f.member, f.seq, f.flags); err != nil {
				return err
			}
		}
		got := map[uint64]byte{}
		if err := tx.FlagsOf("crew@x.test", 1, func(seq uint64, f byte) error { got[seq] = f; return nil }); err != nil {
			return err
		}
		if len(got) != 2 || got[3] != FlagSeen || got[5] != FlagSeen|FlagFlagged {
			t.Errorf("member 1's flags: %v", got)
		}
		for _, h := range []string{"first", "second"} {
			if err := tx.SetAppPassword("a@x.test", AppPassword{Hash: []byte(h)}); err != nil {
				return err
			}
		}
		if p, err := tx.AppPasswordOf("a@x.test"); err != nil || string(p.Hash) != "second" {
			t.Errorf("app password: %q %v", p.Hash, err)
		}
		if _, err := tx.AppPasswordOf("b@x.test"); !errors.Is(err, ErrNotFound) {
			t.Errorf("an address without app password: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBlobs: shared messages of any size come back whole, and go when their last delivery has.
func TestBlobs(t *testing.T) {
	s, _ := openTest(t)
	sizes := []int{0, 1, blobChunk, blobChunk + 1, 100_003}
	ids := map[uint64][]byte{}
	err := s.Update(func(tx Tx) error {
		for i, n := range sizes {
			data := make([]byte, n)
			for j := range data {
				data[j] = byte(i + j)
			}
			id, err := tx.PutBlob(data, 2)
			if err != nil {
				return err
			}
			ids[id] = data
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(func(tx Tx) error {
		for id, want := range ids {
			got, err := tx.Blob(id)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("blob %d of %d bytes: got %d bytes, %v", id, len(want), len(got), err)
			}
		}
		var first uint64 = 1
		for range 2 {
			if err := tx.(*boltTx).unrefBlob(first); err != nil {
				return err
			}
		}
		if _, err := tx.Blob(first); !errors.Is(err, ErrNotFound) {
			t.Errorf("a blob with no deliveries left is still there: %v", err)
		}
		if got, err := tx.Blob(2); err != nil || !bytes.Equal(got, ids[2]) {
			t.Errorf("removing one blob touched another: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBouncesKeptBounded: a list keeps its latest MaxBounces bounces, each cut to
// MaxBounceHead bytes; a schema-6 file's whole bounce messages are cut the same way.
func TestBouncesKeptBounded(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const list = "crew@x.test"
	big := bytes.Repeat([]byte("x"), 1<<20)
	err = s.Update(func(tx Tx) error {
		if err := tx.CreateList(List{Address: list}); err != nil {
			return err
		}
		for i := range MaxBounces + 20 {
			if err := tx.AddBounce(list, Bounce{Member: uint64(i + 1), Size: len(big), Head: big}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string, first uint64) {
		t.Helper()
		var n int
		err := s.View(func(tx Tx) error {
			return tx.Bounces(list, func(b Bounce) error {
				if n == 0 && b.Member != first {
					t.Errorf("%s: the oldest bounce kept is of member %d, want %d", when, b.Member, first)
				}
				if len(b.Head) > MaxBounceHead || b.Size != len(big) {
					t.Errorf("%s: a bounce keeps %d bytes of %d", when, len(b.Head), b.Size)
				}
				n++
				return nil
			})
		})
		if err != nil || n != MaxBounces {
			t.Errorf("%s: %d bounces kept (%v), want %d", when, n, err, MaxBounces)
		}
	}
	check("added", 21)
	// Schema 6 kept whole messages.
	err = s.db.Update(func(tx *bolt.Tx) error {
		bounces := tx.Bucket(bucketLists).Bucket([]byte(list)).Bucket(subBounces)
		for range 30 {
			seq, _ := bounces.NextSequence()
			if err := bounces.Put(u64(seq), big); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyVersion, u64(6))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check("migrated", 51)
}

// TestListIncarnations: every new list gets a random incarnation, another one when created
// again at the same address; Store.Incarnation follows what is committed; settings changes keep
// it; a list from before incarnations has none (its tokens keep their old form).
func TestListIncarnations(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const list = "crew@x.test"
	create := func() uint64 {
		t.Helper()
		if err := s.Update(func(tx Tx) error { return tx.CreateList(List{Address: list}) }); err != nil {
			t.Fatal(err)
		}
		inc := s.Incarnation(list)
		if err := s.View(func(tx Tx) error {
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
	if err := s.Update(func(tx Tx) error { return tx.PutList(List{Address: list, Name: "renamed"}) }); err != nil {
		t.Fatal(err)
	}
	// A creation that is rolled back changes nothing.
	if err := s.Update(func(tx Tx) error {
		if err := tx.DeleteList(list); err != nil {
			return err
		}
		if err := tx.CreateList(List{Address: list}); err != nil {
			return err
		}
		return errors.New("changed my mind")
	}); err == nil || s.Incarnation(list) != first {
		t.Fatalf("after a rolled-back re-creation: %v, incarnation %d, want %d", err, s.Incarnation(list), first)
	}
	if err := s.Update(func(tx Tx) error { return tx.DeleteList(list) }); err != nil || s.Incarnation(list) != 0 {
		t.Fatalf("after removal: %v, incarnation %d", err, s.Incarnation(list))
	}
	if second := create(); second == first {
		t.Errorf("the list created again has the old incarnation %d", first)
	}
	// A list as schema 6 made it.
	err = s.db.Update(func(tx *bolt.Tx) error {
		l, err := tx.Bucket(bucketLists).CreateBucket([]byte("old@x.test"))
		if err != nil {
			return err
		}
		for _, name := range listBuckets {
			if _, err := l.CreateBucket(name); err != nil {
				return err
			}
		}
		return putJSON(l, keyConfig, List{Address: "old@x.test"})
	})
	if err != nil {
		t.Fatal(err)
	}
	want := s.Incarnation(list)
	s.Close()
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Incarnation("old@x.test") != 0 || s.Incarnation(list) != want {
		t.Errorf("after reopening: old list %d, new list %d (want 0 and %d)", s.Incarnation("old@x.test"), s.Incarnation(list), want)
	}
}

// TestAfterCommitRunsOnceForAFunctionRunTwice: a batch whose second function fails runs the
// first again; what the first asked to do after the commit happens once, and nothing the
// failed one asked happens at all.
func TestAfterCommitRunsOnceForAFunctionRunTwice(t *testing.T) {
	s, _ := openTest(t)
	runs, after, failedAfter := 0, 0, 0
	ok := &commit{done: make(chan error, 1), fn: func(tx Tx) error {
		runs++
		tx.AfterCommit(func() { after++ })
		return nil
	}}
	errBad := errors.New("bad")
	bad := &commit{done: make(chan error, 1), fn: func(tx Tx) error {
		tx.AfterCommit(func() { failedAfter++ })
		return errBad
	}}
	s.runBatch([]*commit{ok, bad})
	if err := <-ok.done; err != nil {
		t.Fatal(err)
	}
	if err := <-bad.done; !errors.Is(err, errBad) {
		t.Fatalf("failed function's answer: %v", err)
	}
	if runs != 2 || after != 1 || failedAfter != 0 {
		t.Fatalf("function ran %d times, its after-commit %d times, the failed one's %d times; want 2, 1, 0", runs, after, failedAfter)
	}
}
