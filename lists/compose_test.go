package lists

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"

	"crewmail/store"
)

// viewCounter counts the read transactions of a backend.
type viewCounter struct {
	store.Backend
	views atomic.Int64
}

func (v *viewCounter) View(fn func(store.Tx) error) error {
	v.views.Add(1)
	return v.Backend.View(fn)
}

// TestComposeOncePerPost: a post's list copy is read and composed once for all its members,
// and each member's copy differs from the others only by her own one-click unsubscribe link.
// A list removed and made again under the same address never gets the copy of the old list's
// post that had the same number.
func TestComposeOncePerPost(t *testing.T) {
	s := newTestService(t)
	s.cfg.BaseURL = "https://lists.example.test"
	const crew = "crew@lists.example.test"
	post := func(subject string) []store.Delivery {
		t.Helper()
		tgt, err := s.Route(crew)
		if err != nil {
			t.Fatal(err)
		}
		msg := fmt.Sprintf("From: m0@example.test\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@example.test>\r\n\r\nbody\r\n", crew, subject, subject)
		if _, err := s.Accept(Envelope{From: "m0@example.test", Targets: []Target{tgt}}, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		var rows []store.Delivery
		_ = s.st.View(func(tx store.Tx) error {
			return tx.Outbox(func(d store.Delivery) error {
				if d.Seq != 0 {
					rows = append(rows, d)
				}
				return nil
			})
		})
		return rows
	}
	makeList := func() {
		t.Helper()
		if _, err := s.CreateList(crew, ListOptions{Post: "members"}); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if _, err := s.AddMember(crew, fmt.Sprintf("m%d@example.test", i), "", false); err != nil {
				t.Fatal(err)
			}
		}
	}
	makeList()
	rows := post("first")
	if len(rows) != 3 {
		t.Fatalf("%d outbox rows, want 3", len(rows))
	}
	vc := &viewCounter{Backend: s.st}
	s.st = vc
	var bodies [][]byte
	links := map[string]bool{}
	for _, d := range rows {
		msg, err := s.Compose(d)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(msg, []byte("List-Unsubscribe: <https://"))
		if i < 0 {
			t.Fatalf("copy for %s has no one-click link:\n%s", d.To, msg)
		}
		link, _, _ := bytes.Cut(msg[i:], []byte(">"))
		links[string(link)] = true
		bodies = append(bodies, append(append([]byte(nil), msg[:i]...), msg[i+len(link):]...))
	}
	if n := vc.views.Load(); n != 1 {
		t.Errorf("%d read transactions for 3 copies of one post, want 1", n)
	}
	if len(links) != 3 {
		t.Errorf("one-click links %v, want one per member", links)
	}
	for _, b := range bodies[1:] {
		if !bytes.Equal(b, bodies[0]) {
			t.Errorf("copies differ beyond the member's link:\n%s\n---\n%s", bodies[0], b)
		}
	}
	s.st = vc.Backend

	if err := s.RemoveList(crew); err != nil {
		t.Fatal(err)
	}
	makeList()
	rows = post("second")
	if len(rows) == 0 || rows[0].Seq != 1 {
		t.Fatalf("outbox rows of the new list: %+v, want post 1", rows)
	}
	msg, err := s.Compose(rows[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(msg, []byte("Subject: second\r\n")) {
		t.Errorf("the new list's post 1 composed as:\n%s", msg)
	}
}
