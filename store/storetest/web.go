package storetest

import (
	"errors"
	"testing"
	"time"

	"crewmail/store"
)

// webSignInsSessionsAndLooks: a sign-in link is used once; sessions are found by ID and by
// address, the latest seen first, and end one by one; where a member looked is hers, per list,
// and goes with the list; ExpireWeb forgets what expired and nothing else.
func webSignInsSessionsAndLooks(t *testing.T, s store.Backend) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	update := func(what string, fn func(tx store.Tx) error) {
		t.Helper()
		if err := s.Update(fn); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	update("use a link", func(tx store.Tx) error { return tx.UseSignIn([]byte("link-1"), now.Add(15*time.Minute)) })
	if err := s.Update(func(tx store.Tx) error { return tx.UseSignIn([]byte("link-1"), now.Add(15*time.Minute)) }); !errors.Is(err, store.ErrExists) {
		t.Errorf("a link used twice: %v, want ErrExists", err)
	}
	update("another link", func(tx store.Tx) error {
		if used, err := tx.SignInUsed([]byte("link-2")); err != nil || used {
			t.Errorf("a link not used yet: used %v, %v", used, err)
		}
		if err := tx.UseSignIn([]byte("link-2"), now.Add(time.Hour)); err != nil {
			return err
		}
		if used, err := tx.SignInUsed([]byte("link-2")); err != nil || !used {
			t.Errorf("a link just used: used %v, %v", used, err)
		}
		return nil
	})

	update("mailed", func(tx store.Tx) error {
		if at, err := tx.SignInMailed("a@x.test"); err != nil || !at.IsZero() {
			t.Errorf("never mailed: %v %v", at, err)
		}
		return tx.PutSignInMailed("a@x.test", now)
	})
	update("sessions", func(tx store.Tx) error {
		for i, id := range []string{"s1", "s2", "s3"} {
			addr := "a@x.test"
			if id == "s3" {
				addr = "b@x.test"
			}
			if err := tx.PutSession(store.Session{ID: []byte(id), Address: addr, Created: now, Seen: now.Add(time.Duration(i) * time.Minute),
				Expires: now.Add(time.Duration(i+1) * time.Hour), Agent: "Firefox"}); err != nil {
				return err
			}
		}
		return nil
	})
	err := s.View(func(tx store.Tx) error {
		if at, err := tx.SignInMailed("a@x.test"); err != nil || !at.Equal(now) {
			t.Errorf("mailed at %v %v, want %v", at, err, now)
		}
		ss, err := tx.Sessions("a@x.test")
		if err != nil {
			return err
		}
		if len(ss) != 2 || string(ss[0].ID) != "s2" || string(ss[1].ID) != "s1" || ss[0].Agent != "Firefox" {
			t.Errorf("a's sessions: %+v, want s2 then s1", ss)
		}
		if got, err := tx.Session([]byte("s3")); err != nil || got.Address != "b@x.test" {
			t.Errorf("session s3: %+v %v", got, err)
		}
		if _, err := tx.Session([]byte("nope")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a session that is not there: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	update("end s2", func(tx store.Tx) error {
		if err := tx.DeleteSession([]byte("s2")); err != nil {
			return err
		}
		return tx.DeleteSession([]byte("never"))
	})
	err = s.View(func(tx store.Tx) error {
		ss, err := tx.Sessions("a@x.test")
		if len(ss) != 1 || string(ss[0].ID) != "s1" {
			t.Errorf("after ending s2: %+v %v", ss, err)
		}
		_, err = tx.Session([]byte("s2"))
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("an ended session: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	update("looked", func(tx store.Tx) error {
		for _, l := range []string{"crew@x.test", "other@x.test"} {
			if err := tx.CreateList(store.List{Address: l}); err != nil {
				return err
			}
		}
		if seq, err := tx.Looked("a@x.test", "crew@x.test"); err != nil || seq != 0 {
			t.Errorf("never looked: %d %v", seq, err)
		}
		if err := tx.PutLooked("a@x.test", "crew@x.test", 7); err != nil {
			return err
		}
		return tx.PutLooked("a@x.test", "other@x.test", 2)
	})
	update("list gone", func(tx store.Tx) error {
		if seq, err := tx.Looked("a@x.test", "crew@x.test"); err != nil || seq != 7 {
			t.Errorf("looked at 7: %d %v", seq, err)
		}
		if seq, err := tx.Looked("b@x.test", "crew@x.test"); err != nil || seq != 0 {
			t.Errorf("another member: %d %v", seq, err)
		}
		if err := tx.DeleteList("crew@x.test"); err != nil {
			return err
		}
		if err := tx.CreateList(store.List{Address: "crew@x.test"}); err != nil {
			return err
		}
		if seq, err := tx.Looked("a@x.test", "crew@x.test"); err != nil || seq != 0 {
			t.Errorf("a list made again remembers %d %v", seq, err)
		}
		if _, err := tx.Looked("a@x.test", "none@x.test"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a list that does not exist: %v", err)
		}
		return nil
	})

	// 90 minutes on: link-1 (15 min) and s1 (1 h) have expired; link-2 (1 h) too; s3 (3 h)
	// has not. The mail record is younger than a day.
	update("expire", func(tx store.Tx) error {
		n, err := tx.ExpireWeb(now.Add(90 * time.Minute))
		if err != nil {
			return err
		}
		if n != 3 {
			t.Errorf("ExpireWeb forgot %d records, want 3 (two links, one session)", n)
		}
		if _, err := tx.Session([]byte("s3")); err != nil {
			t.Errorf("a live session was forgotten: %v", err)
		}
		if ss, _ := tx.Sessions("a@x.test"); len(ss) != 0 {
			t.Errorf("an expired session is still listed: %+v", ss)
		}
		if at, _ := tx.SignInMailed("a@x.test"); at.IsZero() {
			t.Error("the mail record went too soon")
		}
		return tx.UseSignIn([]byte("link-1"), now.Add(2*time.Hour)) // forgotten, so usable: its age refuses it
	})
}
