package lists

import "testing"

// TestDecisionReasonOnlyWhenMeant: an owner's reply declines with "no" as with "decline", but
// only "decline REASON", "reject REASON" or a "reason:" line gives the requester a reason.
func TestDecisionReasonOnlyWhenMeant(t *testing.T) {
	for _, c := range []struct {
		own     []string
		approve bool
		reason  string
		ok      bool
	}{
		{[]string{"Approve"}, true, "", true},
		{[]string{"yes, fine"}, true, "", true},
		{[]string{"No - who is this? I don't know them."}, false, "", true},
		{[]string{"deny"}, false, "", true},
		{[]string{"decline We only take gardeners."}, false, "We only take gardeners.", true},
		{[]string{"reject: off topic"}, false, "off topic", true},
		{[]string{"No.", "Reason: the list is for the street only."}, false, "the list is for the street only.", true},
		{[]string{"who is this?"}, false, "", false},
		{nil, false, "", false},
	} {
		cmd := &command{m: &inbound{own: c.own}}
		approve, reason, ok := cmd.decision()
		if approve != c.approve || reason != c.reason || ok != c.ok {
			t.Errorf("decision(%q) = %v, %q, %v; want %v, %q, %v", c.own, approve, reason, ok, c.approve, c.reason, c.ok)
		}
	}
}
