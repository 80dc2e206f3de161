package storetest

import (
	"errors"
	"slices"
	"testing"

	"crewmail/internal/searchq"
	"crewmail/internal/vocab"
	"crewmail/store"
)

// changeAddressMovesEverything: a member's memberships (same ID, so her read state and mutes),
// cursors, app password and the authorship of her posts move to the new address; an address
// that is a member already of one of her lists stops the move, and nothing moves.
func changeAddressMovesEverything(t *testing.T, s store.Backend) {
	skipWithoutPeople(t, s)
	const a, b = "crew@x.test", "band@x.test"
	var ann store.Member
	err := s.Update(func(tx store.Tx) error {
		for _, l := range []string{a, b} {
			if err := tx.CreateList(store.List{Address: l}); err != nil {
				return err
			}
		}
		var err error
		if ann, err = tx.AddMember(a, store.Member{Address: "ann@old.test", Mode: vocab.Daily, Origin: store.OriginInvited, InvitedBy: "own@x.test"}); err != nil {
			return err
		}
		if _, err := tx.AddMember(b, store.Member{Address: "bob@x.test", Mode: vocab.Each}); err != nil {
			return err
		}
		if _, err := tx.AddMember(a, store.Member{Address: "cat@x.test", Mode: vocab.Each}); err != nil {
			return err
		}
		if err := tx.PutCursor(a, "ann@old.test", store.Cursor{Seq: 1}); err != nil {
			return err
		}
		if err := tx.SetFlags(a, ann.ID, 1, store.FlagSeen); err != nil {
			return err
		}
		if err := tx.Mute(a, 1, ann.ID); err != nil {
			return err
		}
		if err := tx.SetAppPassword("ann@old.test", store.AppPassword{Hash: []byte("h")}); err != nil {
			return err
		}
		for _, p := range []store.Post{{MessageID: "1@x", From: "ann@old.test"}, {MessageID: "2@x", From: "bob@x.test"}} {
			raw := []byte("From: " + p.From + "\r\nSubject: x\r\n\r\nx\r\n")
			p, err := tx.AppendPost(b, p, raw)
			if err != nil {
				return err
			}
			if err := tx.IndexPost(b, p.Seq, store.NewSearchDoc(raw).For(p)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// cat is on crew, as ann is: ann cannot become cat.
	err = s.Update(func(tx store.Tx) error {
		_, err := people(tx).ChangeAddress("ann@old.test", "cat@x.test")
		return err
	})
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("moving onto a member of another list: %v", err)
	}
	var moved []string
	if err := s.Update(func(tx store.Tx) error {
		var err error
		moved, err = people(tx).ChangeAddress("ann@old.test", "ann@new.test")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(moved, []string{a}) {
		t.Errorf("lists moved: %v", moved)
	}
	err = s.View(func(tx store.Tx) error {
		if _, err := tx.Member(a, "ann@old.test"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the old address is still a member: %v", err)
		}
		m, err := tx.Member(a, "ann@new.test")
		if err != nil || m.ID != ann.ID || m.Mode != vocab.Daily || m.InvitedBy != "own@x.test" {
			t.Errorf("moved membership: %+v %v", m, err)
		}
		if byID, err := tx.MemberByID(a, ann.ID); err != nil || byID.Address != "ann@new.test" {
			t.Errorf("member by ID: %+v %v", byID, err)
		}
		if c, ok, err := tx.Cursor(a, "ann@new.test"); err != nil || !ok || c.Seq != 1 {
			t.Errorf("moved cursor: %+v %v %v", c, ok, err)
		}
		if _, err := tx.AppPasswordOf("ann@new.test"); err != nil {
			t.Errorf("app password did not move: %v", err)
		}
		if _, err := tx.AppPasswordOf("ann@old.test"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the old address keeps an app password: %v", err)
		}
		if p, err := tx.PostMeta(b, 1); err != nil || p.From != "ann@new.test" {
			t.Errorf("authorship of her post on a list she is not on: %+v %v", p, err)
		}
		if p, err := tx.PostMeta(b, 2); err != nil || p.From != "bob@x.test" {
			t.Errorf("someone else's post: %+v %v", p, err)
		}
		for q, want := range map[string]int{"from:ann@new.test": 1, "from:bob@x.test": 1} {
			query, err := searchq.Parse(q)
			if err != nil {
				return err
			}
			n := 0
			if err := tx.SearchPosts(b, query, 0, func(store.Hit) error { n++; return nil }); err != nil {
				return err
			}
			if n != want {
				t.Errorf("search %q after the move: %d posts, want %d", q, n, want)
			}
		}
		if mu, fo, err := people(tx).MarksOf(a, ann.ID); err != nil || len(mu) != 1 || mu[0] != 1 || len(fo) != 0 {
			t.Errorf("her marks after the move: muted %v, followed %v, %v", mu, fo, err)
		}
		muted, err := tx.Muted(a, store.Post{Thread: 1, Origin: 1})
		if err != nil || !muted[ann.ID] {
			t.Errorf("her mute did not stay with her: %v %v", muted, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// redactedPostKeepsItsPlace: a redaction replaces a post's bytes and record, keeps its
// sequence, Message-ID and thread, counts on the list (once: the same redaction again changes
// nothing), and a forgotten member leaves no read state behind.
func redactedPostKeepsItsPlace(t *testing.T, s store.Backend) {
	skipWithoutPeople(t, s)
	const a = "crew@x.test"
	var m store.Member
	err := s.Update(func(tx store.Tx) error {
		if err := tx.CreateList(store.List{Address: a}); err != nil {
			return err
		}
		var err error
		if m, err = tx.AddMember(a, store.Member{Address: "ann@x.test", Mode: vocab.Each}); err != nil {
			return err
		}
		if err := tx.SetFlags(a, m.ID, 1, store.FlagSeen); err != nil {
			return err
		}
		for _, id := range []uint64{m.ID, m.ID + 1} {
			if err := tx.AddBounce(a, store.Bounce{Member: id, Kind: "failed", Head: []byte("From: MAILER-DAEMON")}); err != nil {
				return err
			}
		}
		raw := []byte("From: Ann Lee <ann@x.test>\r\nSubject: Seeds\r\n\r\nmarigolds\r\n")
		p, err := tx.AppendPost(a, store.Post{MessageID: "1@x", From: "ann@x.test", Subject: "Seeds"}, raw)
		if err != nil {
			return err
		}
		if err := tx.IndexPost(a, p.Seq, store.NewSearchDoc(raw).For(p)); err != nil {
			return err
		}
		_, err = tx.AppendPost(a, store.Post{MessageID: "2@x", From: "bob@x.test", Thread: 1}, []byte("Subject: Re: Seeds\r\n\r\nyes\r\n"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tomb := []byte("From: Former member <former-member-x@invalid.x.test>\r\nSubject: (removed)\r\n\r\nremoved at the author's request\r\n")
	for range 2 {
		if err := s.Update(func(tx store.Tx) error {
			return people(tx).RedactPost(a, 1, store.Post{From: "x", Redacted: store.RedactRemoved, MessageID: "other@x", Thread: 9}, tomb)
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Update(func(tx store.Tx) error { return people(tx).ForgetMember(a, "ann@x.test") }); err != nil {
		t.Fatal(err)
	}
	err = s.View(func(tx store.Tx) error {
		p, raw, err := tx.Post(a, 1)
		if err != nil || string(raw) != string(tomb) || p.Redacted != store.RedactRemoved || p.MessageID != "1@x" || p.Thread != 1 || p.Size != len(tomb) {
			t.Errorf("redacted post: %+v %q %v", p, raw, err)
		}
		if seq, ok, err := tx.MessageID(a, "1@x"); err != nil || !ok || seq != 1 {
			t.Errorf("the redacted post's Message-ID: %d %v %v", seq, ok, err)
		}
		if p, err := tx.PostMeta(a, 2); err != nil || p.Thread != 1 || p.Redacted != "" {
			t.Errorf("the reply: %+v %v", p, err)
		}
		for q, want := range map[string]int{"marigolds": 0, "ann": 0, "lee": 0, "removed": 1} {
			query, err := searchq.Parse(q)
			if err != nil {
				return err
			}
			n := 0
			if err := tx.SearchPosts(a, query, 0, func(store.Hit) error { n++; return nil }); err != nil {
				return err
			}
			if n != want {
				t.Errorf("search %q after the redaction: %d posts, want %d", q, n, want)
			}
		}
		if l, err := tx.List(a); err != nil || l.Redactions != 1 {
			t.Errorf("redactions counted: %d %v", l.Redactions, err)
		}
		n := 0
		if err := tx.FlagsOf(a, m.ID, func(uint64, byte) error { n++; return nil }); err != nil || n != 0 {
			t.Errorf("a forgotten member's flags: %d %v", n, err)
		}
		if _, err := tx.Member(a, "ann@x.test"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("forgotten member: %v", err)
		}
		var left []uint64
		if err := tx.Bounces(a, func(b store.Bounce) error { left = append(left, b.Member); return nil }); err != nil || len(left) != 1 || left[0] != m.ID+1 {
			t.Errorf("bounces after forgetting member %d: %v %v", m.ID, left, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// skipWithoutPeople skips a test of the People role on a backend that lacks it (it says so).
func skipWithoutPeople(t *testing.T, s store.Backend) {
	t.Helper()
	_ = s.View(func(tx store.Tx) error {
		if _, err := store.AsPeople(tx); err != nil {
			t.Skipf("%v", err)
		}
		return nil
	})
}

func people(tx store.Tx) store.People { p, _ := store.AsPeople(tx); return p }
