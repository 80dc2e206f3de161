package storetest

import (
	"fmt"
	"testing"
	"time"

	"crewmail/store"
)

// mergedThreadsFollowThroughEverything: threads merged twice over (3 into 2, then 2 into 1)
// read as one wherever a post's thread is read, while ids and subjects keep the thread they
// were recorded in, and mutes stay with the conversation muted: made before a merge, they do
// not cover what the merge brought; made after, they do.
func mergedThreadsFollowThroughEverything(t *testing.T, s store.Backend) {
	const list = "crew@lists.example.test"
	day := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	err := s.Update(func(tx store.Tx) error {
		if err := tx.CreateList(store.List{Address: list, Name: "Crew"}); err != nil {
			return err
		}
		for i := 1; i <= 3; i++ { // three posts, three threads
			p, err := tx.AppendPost(list, store.Post{MessageID: fmt.Sprintf("p%d@x", i), Received: day}, []byte("x"))
			if err != nil {
				return err
			}
			if err := tx.IndexThread(list, p.Origin, []string{p.MessageID}, fmt.Sprintf("subject %d", i), day); err != nil {
				return err
			}
		}
		if err := tx.Mute(list, 3, 7); err != nil { // member 7 mutes thread 3
			return err
		}
		// A post naming p2 and p3 merges 3 into 2; one naming p3 and p1, 2 into 1. Each
		// joins the thread of the first id it names.
		for _, c := range []struct {
			ids  []string
			want uint64
		}{{[]string{"p2@x", "p3@x"}, 2}, {[]string{"p3@x", "p1@x"}, 3}} {
			if th, err := tx.FindThread(list, c.ids); err != nil || th != c.want {
				return fmt.Errorf("FindThread(%v) = %d, %v; want %d", c.ids, th, err, c.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	origin := func(th uint64) store.Post { return store.Post{Origin: th, Thread: 1} }
	muted := func(tx store.Threads, p store.Post) map[uint64]bool {
		m, err := tx.Muted(list, p)
		if err != nil {
			t.Error(err)
		}
		return m
	}
	err = s.View(func(tx store.Tx) error {
		if th, _ := tx.FindThread(list, []string{"p3@x"}); th != 3 {
			t.Errorf("p3's id is recorded in thread %d, want 3", th)
		}
		if th, ok, err := tx.SubjectThread(list, "subject 3", day); err != nil || !ok || th != 3 {
			t.Errorf("subject 3 is recorded in thread %d (%v), want 3", th, ok)
		}
		_ = tx.PostsAfter(list, 0, func(p store.Post, _ []byte) error {
			if p.Thread != 1 || p.Origin != p.Seq {
				t.Errorf("PostsAfter: post %d in thread %d from %d, want 1 from %d", p.Seq, p.Thread, p.Origin, p.Seq)
			}
			return nil
		})
		_ = tx.Posts(list, func(p store.Post) error {
			if p.Thread != 1 {
				t.Errorf("Posts: post %d in thread %d", p.Seq, p.Thread)
			}
			return nil
		})
		if p, _ := tx.PostMeta(list, 3); p.Thread != 1 || p.Origin != 3 {
			t.Errorf("PostMeta: post 3 in thread %d from %d", p.Thread, p.Origin)
		}
		if p, _, _ := tx.Post(list, 2); p.Thread != 1 {
			t.Errorf("Post: post 2 in thread %d", p.Thread)
		}
		if m := muted(tx, origin(3)); !m[7] {
			t.Errorf("the mute of thread 3 was lost in the merges: %v", m)
		}
		for _, th := range []uint64{1, 2} {
			if m := muted(tx, origin(th)); m[7] {
				t.Errorf("the mute of thread 3 reached thread %d, merged with it after the mute", th)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A mute of thread 2 made after the merges covers 3, merged into 2 before; not 1, which 2
	// was merged into. Unmuting 3 undoes the mutes that covered 3.
	err = s.Update(func(tx store.Tx) error {
		if err := tx.Mute(list, 2, 8); err != nil {
			return err
		}
		if m := muted(tx, origin(3)); !m[7] || !m[8] {
			t.Errorf("thread 3 after muting 2: %v", m)
		}
		if m := muted(tx, origin(1)); m[8] {
			t.Errorf("thread 1 after muting 2: %v", m)
		}
		if err := tx.Unmute(list, 3, 7); err != nil {
			return err
		}
		if m := muted(tx, origin(3)); m[7] || !m[8] {
			t.Errorf("thread 3 after 7 unmuted it: %v", m)
		}
		if err := tx.Unmute(list, 3, 8); err != nil {
			return err
		}
		if m := muted(tx, origin(2)); m[8] {
			t.Errorf("thread 2 after 8 unmuted 3, which the mute of 2 covered: %v", m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// damagedCursorIsAnErrorNotNone: a digest member's cursor that does not decode is reported as
// damaged, never taken for a member without one (whose digest would start at the first post).
// The backend damages it through store.Faults.
func damagedCursorIsAnErrorNotNone(t *testing.T, s store.Backend) {
	const list = "crew@x.test"
	err := s.Update(func(tx store.Tx) error {
		if err := tx.CreateList(store.List{Address: list}); err != nil {
			return err
		}
		for _, addr := range []string{"alice@x.test", "bob@x.test"} {
			if _, err := tx.AddMember(list, store.Member{Address: addr, Mode: "daily"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f, ok := s.(store.Faulty)
	if !ok {
		t.Fatalf("the backend %T cannot be made to fail (store.Faulty)", s)
	}
	if err := f.Faults().DamageCursor(list, "alice@x.test"); err != nil {
		t.Fatal(err)
	}
	err = s.View(func(tx store.Tx) error {
		if _, ok, err := tx.Cursor(list, "alice@x.test"); err == nil || ok {
			t.Errorf("damaged cursor read as ok=%v, err=%v; want an error", ok, err)
		}
		if _, ok, err := tx.Cursor(list, "bob@x.test"); err != nil || !ok {
			t.Errorf("bob's cursor: ok=%v, err=%v", ok, err)
		}
		if _, ok, err := tx.Cursor(list, "carol@x.test"); err != nil || ok {
			t.Errorf("a non-member's cursor: ok=%v, err=%v; want none", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// followsAreTheirOwnAndFollowMerges: a follow is kept apart from mutes (a list without any
// has none, and muting does not follow), covers what was merged into the thread before it
// was made, and Unfollow undoes it.
func followsAreTheirOwnAndFollowMerges(t *testing.T, s store.Backend) {
	const list = "crew@lists.example.test"
	day := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	followed := func(tx store.Threads, th uint64) map[uint64]bool {
		m, err := tx.Followed(list, store.Post{Origin: th, Thread: 1})
		if err != nil {
			t.Error(err)
		}
		return m
	}
	err := s.Update(func(tx store.Tx) error {
		if err := tx.CreateList(store.List{Address: list, Name: "Crew"}); err != nil {
			return err
		}
		for i := 1; i <= 2; i++ {
			p, err := tx.AppendPost(list, store.Post{MessageID: fmt.Sprintf("p%d@x", i), Received: day}, []byte("x"))
			if err != nil {
				return err
			}
			if err := tx.IndexThread(list, p.Origin, []string{p.MessageID}, fmt.Sprintf("subject %d", i), day); err != nil {
				return err
			}
		}
		if m := followed(tx, 1); len(m) != 0 {
			t.Errorf("a list nobody followed anything of: %v", m)
		}
		if err := tx.Mute(list, 2, 5); err != nil {
			return err
		}
		if m := followed(tx, 2); m[5] {
			t.Errorf("a mute counts as a follow: %v", m)
		}
		if _, err := tx.FindThread(list, []string{"p1@x", "p2@x"}); err != nil { // 2 into 1
			return err
		}
		if err := tx.Follow(list, 1, 7); err != nil {
			return err
		}
		if m := followed(tx, 2); !m[7] {
			t.Errorf("thread 2, merged into 1 before 7 followed 1: %v", m)
		}
		if m, _ := tx.Muted(list, store.Post{Origin: 1, Thread: 1}); m[7] {
			t.Errorf("a follow counts as a mute: %v", m)
		}
		if err := tx.Unfollow(list, 1, 7); err != nil {
			return err
		}
		if m := followed(tx, 1); m[7] {
			t.Errorf("thread 1 after 7 unfollowed it: %v", m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
