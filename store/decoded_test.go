package store

import (
	"slices"
	"testing"

	"crewmail/internal/vocab"
)

// TestDecodedSettingsFollowTheRecord: list settings and member records read again come from
// what was decoded before (no JSON decoded) only while their bytes are the same; a change,
// committed or not, is read as written, and what a caller does to the value it got never
// reaches the next reader.
func TestDecodedSettingsFollowTheRecord(t *testing.T) {
	s, _ := openTest(t)
	const crew = "crew@x.test"
	if err := s.Update(func(tx Tx) error {
		if err := tx.CreateList(List{Address: crew, Name: "crew", Owners: []string{"o@x.test"}}); err != nil {
			return err
		}
		_, err := tx.AddMember(crew, Member{Address: "m@x.test", Mode: vocab.Each})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	read := func() (l List, m Member) {
		t.Helper()
		if err := s.Update(func(tx Tx) error {
			var err error
			if l, err = tx.List(crew); err != nil {
				return err
			}
			m, err = tx.Member(crew, "m@x.test")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return l, m
	}
	l, _ := read()
	l.Owners[0] = "changed-in-place@x.test" // the caller's own copy
	l2, m2 := read()
	if _, ok := s.decoded.lists[crew]; !ok || l2.Owners[0] != "o@x.test" || l2.Name != "crew" || m2.Mode != vocab.Each {
		t.Fatalf("second read: %+v %+v (kept: %v)", l2, m2, ok)
	}
	// A change in a transaction that is rolled back, then one that is committed.
	_ = s.Update(func(tx Tx) error {
		l := l2
		l.Name = "rolled back"
		if err := tx.PutList(l); err != nil {
			return err
		}
		if got, _ := tx.List(crew); got.Name != "rolled back" {
			t.Errorf("inside the transaction: %q", got.Name)
		}
		return errRollback
	})
	if l, _ := read(); l.Name != "crew" {
		t.Errorf("after a rollback the name is %q, want crew", l.Name)
	}
	if err := s.Update(func(tx Tx) error {
		l := l2
		l.Name, l.Owners = "renamed", append(l.Owners, "p@x.test")
		m := m2
		m.Mode = vocab.Daily
		if err := tx.PutList(l); err != nil {
			return err
		}
		return tx.PutMember(crew, m)
	}); err != nil {
		t.Fatal(err)
	}
	l3, m3 := read()
	if l3.Name != "renamed" || !slices.Equal(l3.Owners, []string{"o@x.test", "p@x.test"}) || m3.Mode != vocab.Daily {
		t.Errorf("after the change: %+v %+v", l3, m3)
	}
}

type rollback struct{}

func (rollback) Error() string { return "rolled back on purpose" }

var errRollback error = rollback{}
