package outcome

import "testing"

func TestJudgements(t *testing.T) {
	for _, tt := range []struct {
		r                     Result
		policy, throttled, v4 bool
		class                 int
		text                  string
	}{
		{Result{Step: Rcpt, Code: 421, Status: "4.7.28", Text: "rate limited"}, false, true, false, 4, "rcpt: 421 4.7.28 rate limited"},
		{Result{Step: Rcpt, Code: 450, Status: "4.2.1", Text: "Too many messages, slow down"}, false, true, false, 4, "rcpt: 450 4.2.1 Too many messages, slow down"},
		{Result{Step: Rcpt, Code: 451, Status: "4.3.0", Text: "try again later"}, false, false, false, 4, "rcpt: 451 4.3.0 try again later"},
		{Result{Step: Connect, Refused: true, Text: "connection refused", Remote: "192.0.2.1:25"}, false, true, false, 0, "connect: connection refused (192.0.2.1:25)"},
		{Result{Step: Rcpt, Code: 554, Status: "5.7.1", Text: "Access denied", Permanent: true}, true, false, false, 5, "rcpt: 554 5.7.1 Access denied"},
		{Result{Step: Rcpt, Code: 550, Status: "5.7.25", Text: "no PTR", Permanent: true}, true, false, true, 5, "rcpt: 550 5.7.25 no PTR"},
		{Result{Step: Rcpt, Code: 550, Status: "5.1.1", Text: "no such user", Permanent: true}, false, false, false, 5, "rcpt: 550 5.1.1 no such user"},
		// A 5xx that mentions a rate is refused for good, not throttled.
		{Result{Step: Data, Code: 550, Text: "message rate exceeded, rejected"}, false, false, false, 5, "data: 550 message rate exceeded, rejected"},
		{Result{Step: Done}, false, false, false, 0, "done:"},
	} {
		r := tt.r
		if r.Policy() != tt.policy || r.Throttled() != tt.throttled || r.IPv4Only() != tt.v4 || r.Class() != tt.class || r.String() != tt.text {
			t.Errorf("%+v: policy %v throttled %v ipv4only %v class %d %q; want %v %v %v %d %q", r,
				r.Policy(), r.Throttled(), r.IPv4Only(), r.Class(), r.String(), tt.policy, tt.throttled, tt.v4, tt.class, tt.text)
		}
	}
	if !(Result{Step: Done}).OK() || (Result{Step: Rcpt}).OK() {
		t.Error("OK is not the Done step")
	}
}
