package lists

import (
	"errors"
	"testing"
	"time"

	"crewmail/internal/outcome"
	"crewmail/store"
)

// TestDeliveryFailedWakesDeliveryOnlyAfterItsCommit: a failure that pauses a bouncing member
// queues notices; delivery is woken for them once the transaction recording the failure is on
// disk, and not at all when that transaction is thrown away.
func TestDeliveryFailedWakesDeliveryOnlyAfterItsCommit(t *testing.T) {
	s := newTestService(t)
	s.cfg.BounceThreshold, s.cfg.BouncePeriod = 1, time.Nanosecond
	const list = "crew@lists.example.test"
	if _, err := s.CreateList(list, ListOptions{Owners: []string{"owner@example.test"}}); err != nil {
		t.Fatal(err)
	}
	m, err := s.AddMember(list, "alice@example.test", "", false)
	if err != nil {
		t.Fatal(err)
	}
	wakes := 0
	s.Enqueued = func() { wakes++ }
	d := store.Delivery{List: list, Member: m.ID, To: m.Address}
	fail := func(tx store.Tx) error {
		return s.DeliveryFailed(tx, d, outcome.Result{Step: outcome.Rcpt, Code: 550, Status: "5.1.1", Text: "no such user", Permanent: true})
	}
	if err := s.st.Update(fail); err != nil { // starts the bounce score's period
		t.Fatal(err)
	}
	s.Now = func() time.Time { return time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC) }
	errLater := errors.New("a later step failed")
	err = s.st.Update(func(tx store.Tx) error {
		if err := fail(tx); err != nil {
			return err
		}
		return errLater
	})
	if !errors.Is(err, errLater) || wakes != 0 {
		t.Fatalf("a thrown-away failure: %v, %d wake-ups; want %v, none", err, wakes, errLater)
	}
	if err := s.st.Update(fail); err != nil { // pauses the member, with notices
		t.Fatal(err)
	}
	if wakes != 1 {
		t.Fatalf("%d wake-ups after the failure that paused the member, want 1", wakes)
	}
}
