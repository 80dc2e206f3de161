package lists

import (
	"testing"

	"crewmail/internal/outcome"
	"crewmail/store"
)

// TestDeliveryFailedReadsTheStatusCode: a refusal for policy or reputation (5.7.x, whatever the
// words) counts against the list and never scores the member; a 5.1.1 scores the member; retries
// run out are a soft bounce. Nothing is read from our own wording.
func TestDeliveryFailedReadsTheStatusCode(t *testing.T) {
	for _, tt := range []struct {
		name   string
		o      outcome.Result
		score  float64
		policy int
	}{
		{"554 5.7.1 access denied", outcome.Result{Step: outcome.Rcpt, Code: 554, Status: "5.7.1", Text: "Access denied", Permanent: true}, 0, 1},
		{"550 5.7.708 microsoft", outcome.Result{Step: outcome.Rcpt, Code: 550, Status: "5.7.708", Text: "Access denied, traffic not accepted from this IP", Permanent: true}, 0, 1},
		{"550 5.7.25 no PTR", outcome.Result{Step: outcome.Rcpt, Code: 550, Status: "5.7.25", Text: "no PTR record", Permanent: true}, 0, 1},
		{"550 5.1.1 no such user", outcome.Result{Step: outcome.Rcpt, Code: 550, Status: "5.1.1", Text: "no such user", Permanent: true}, hardBounce, 0},
		{"retries exhausted", outcome.Result{Step: outcome.Rcpt, Code: 451, Status: "4.3.0", Text: "try again later", GaveUp: true}, softBounce, 0},
		{"retries exhausted, our words only", outcome.Result{Step: outcome.Connect, Text: "gave up: policy blocked spam reputation", GaveUp: true}, softBounce, 0},
		{"no enhanced code, the server's words", outcome.Result{Step: outcome.Data, Code: 550, Text: "message blocked by DMARC policy", Permanent: true}, 0, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestService(t)
			const list = "crew@lists.example.test"
			if _, err := s.CreateList(list, ListOptions{Owners: []string{"owner@example.test"}}); err != nil {
				t.Fatal(err)
			}
			m, err := s.AddMember(list, "alice@example.test", "", false)
			if err != nil {
				t.Fatal(err)
			}
			d := store.Delivery{List: list, Member: m.ID, To: m.Address}
			if err := s.st.Update(func(tx store.Tx) error { return s.DeliveryFailed(tx, d, tt.o) }); err != nil {
				t.Fatal(err)
			}
			err = s.st.View(func(tx store.Tx) error {
				l, err := tx.List(list)
				if err != nil {
					return err
				}
				got, err := tx.MemberByID(list, m.ID)
				if err != nil {
					return err
				}
				if got.BounceScore != tt.score {
					t.Errorf("member bounce score %v, want %v", got.BounceScore, tt.score)
				}
				if l.PolicyBounces != tt.policy {
					t.Errorf("list policy refusals %d, want %d", l.PolicyBounces, tt.policy)
				}
				if tt.policy > 0 && l.LastPolicy == "" {
					t.Errorf("the list's last policy refusal is not recorded")
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
