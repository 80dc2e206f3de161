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

// TestBlobs: shared messages of any size, around and across the chunks they are stored in,
// come back whole, and go when their last delivery has (storetest checks the same through the
// outbox).
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

// TestBouncesKeptBounded: a schema-6 file's whole bounce messages are cut as new bounces are:
// the latest MaxBounces kept, each cut to MaxBounceHead bytes (storetest checks new ones).
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

// TestListIncarnations: the incarnations known are those on disk after a restart, and a list
// from before incarnations has none (its tokens keep their old form). How creations, changes
// and removals set them, storetest checks.
func TestListIncarnations(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const list = "crew@x.test"
	if err := s.Update(func(tx Tx) error { return tx.CreateList(List{Address: list}) }); err != nil {
		t.Fatal(err)
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
	if s.Incarnation("old@x.test") != 0 || s.Incarnation(list) != want || want == 0 {
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
