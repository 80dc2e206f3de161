package store

import (
	"errors"
	"testing"
)

// TestFailCommitsLosesTheWholeTransaction: a commit made to fail leaves nothing of what its
// Update wrote, its caller hears why, and the commit after it is written as usual.
func TestFailCommitsLosesTheWholeTransaction(t *testing.T) {
	s, _ := openTest(t)
	gone := errors.New("the disk is gone")
	if err := s.Faults().FailCommits(1, gone); err != nil {
		t.Fatal(err)
	}
	create := func(addr string) error {
		return s.Update(func(tx Tx) error { return tx.CreateList(List{Address: addr, Join: "approve", Post: "anyone"}) })
	}
	if err := create("crew@example.test"); !errors.Is(err, gone) {
		t.Fatalf("the failed commit returned %v", err)
	}
	if err := create("garden@example.test"); err != nil {
		t.Fatalf("the next commit: %v", err)
	}
	err := s.View(func(tx Tx) error {
		if _, err := tx.List("crew@example.test"); !errors.Is(err, ErrNotFound) {
			t.Errorf("the list of the failed commit: %v", err)
		}
		_, err := tx.List("garden@example.test")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDamageCursorMakesTheCursorUnreadable: the damage is one a reader reports, not one it
// reads as "nothing had yet".
func TestDamageCursorMakesTheCursorUnreadable(t *testing.T) {
	s, _ := openTest(t)
	err := s.Update(func(tx Tx) error {
		if err := tx.CreateList(List{Address: "crew@example.test", Join: "approve", Post: "anyone"}); err != nil {
			return err
		}
		return tx.PutCursor("crew@example.test", "alice@example.test", Cursor{Seq: 3})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Faults().DamageCursor("crew@example.test", "alice@example.test"); err != nil {
		t.Fatal(err)
	}
	err = s.View(func(tx Tx) error {
		_, _, err := tx.Cursor("crew@example.test", "alice@example.test")
		return err
	})
	if err == nil {
		t.Error("a damaged cursor read without an error")
	}
}
