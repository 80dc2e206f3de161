package store

import (
	"fmt"
	"testing"
	"time"
)

// TestMergedThreadsFollowThroughEverything: threads merged twice over (3 into 2, then 2 into
// 1) read as one wherever a thread number is read — posts, ids, subjects, mutes made before
// and after the merges, and numbers carried by links minted before them.
func TestMergedThreadsFollowThroughEverything(t *testing.T) {
	s, _ := openTest(t)
	const list = "crew@lists.example.test"
	day := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	err := s.Update(func(tx *Tx) error {
		if err := tx.CreateList(List{Address: list, Name: "Crew"}); err != nil {
			return err
		}
		for i := 1; i <= 3; i++ { // three posts, three threads
			p, err := tx.AppendPost(list, Post{MessageID: fmt.Sprintf("p%d@x", i), Received: day}, []byte("x"))
			if err != nil {
				return err
			}
			if err := tx.IndexThread(list, p.Thread, []string{p.MessageID}, fmt.Sprintf("subject %d", i), day); err != nil {
				return err
			}
		}
		if err := tx.Mute(list, 3, 7); err != nil { // member 7 mutes thread 3
			return err
		}
		// A post naming p2 and p3 merges 3 into 2; one naming p3 and p1, 2 into 1.
		for _, c := range []struct {
			ids  []string
			want uint64
		}{{[]string{"p2@x", "p3@x"}, 2}, {[]string{"p3@x", "p1@x"}, 1}} {
			if th, err := tx.FindThread(list, c.ids); err != nil || th != c.want {
				return fmt.Errorf("FindThread(%v) = %d, %v; want %d", c.ids, th, err, c.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(func(tx *Tx) error {
		if th, _ := tx.FindThread(list, []string{"p3@x"}); th != 1 {
			t.Errorf("p3's id is in thread %d, want 1", th)
		}
		if th, ok := tx.SubjectThread(list, "subject 3", day); !ok || th != 1 {
			t.Errorf("subject 3 is in thread %d (%v), want 1", th, ok)
		}
		_ = tx.PostsAfter(list, 0, func(p Post, _ []byte) error {
			if p.Thread != 1 {
				t.Errorf("PostsAfter: post %d in thread %d, want 1", p.Seq, p.Thread)
			}
			return nil
		})
		_ = tx.Posts(list, func(p Post) error {
			if p.Thread != 1 {
				t.Errorf("Posts: post %d in thread %d, want 1", p.Seq, p.Thread)
			}
			return nil
		})
		if p, _ := tx.PostMeta(list, 3); p.Thread != 1 {
			t.Errorf("PostMeta: post 3 in thread %d", p.Thread)
		}
		if p, _, _ := tx.Post(list, 2); p.Thread != 1 {
			t.Errorf("Post: post 2 in thread %d", p.Thread)
		}
		if m := tx.Muted(list, 1); !m[7] {
			t.Errorf("the mute of thread 3 was lost in the merges: %v", m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A mute link minted for thread 2 before the merges mutes (and unmutes) the whole thread.
	err = s.Update(func(tx *Tx) error {
		if err := tx.Mute(list, 2, 8); err != nil {
			return err
		}
		if m := tx.Muted(list, 3); !m[7] || !m[8] {
			t.Errorf("muted, asked by an old number: %v", m)
		}
		if err := tx.Unmute(list, 3, 7); err != nil {
			return err
		}
		if m := tx.Muted(list, 1); m[7] || !m[8] {
			t.Errorf("after unmuting by an old number: %v", m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
