package dsn

import (
	"strings"
	"testing"
)

// TestPolicyStatusInAReport: a delivery report whose status is 5.7.x is a refusal for policy
// or reputation (the list's problem), whatever its words; 5.1.1 is the recipient's.
func TestPolicyStatusInAReport(t *testing.T) {
	for _, tt := range []struct {
		status, diag string
		want         Kind
	}{
		{"5.7.708", "smtp; 550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.", Policy},
		{"5.7.1", "smtp; 554 5.7.1 Access denied", Policy},
		{"5.7.25", "smtp; 550-5.7.25 The IP address sending this message does not have a PTR record setup", Policy},
		{"5.1.1", "smtp; 550 5.1.1 <ann@example.net>: Recipient address rejected: User unknown", Failed},
	} {
		msg := strings.ReplaceAll(`From: MAILER-DAEMON@mx.example.net
To: crew+bounces-x@lists.example.org
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

Your message could not be delivered.

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; ann@example.net
Action: failed
Status: STATUS
Diagnostic-Code: DIAG

--b--
`, "\n", "\r\n")
		msg = strings.Replace(msg, "STATUS", tt.status, 1)
		msg = strings.Replace(msg, "DIAG", tt.diag, 1)
		r, err := Parse([]byte(msg))
		if err != nil {
			t.Fatalf("%s: %v", tt.status, err)
		}
		if r.Kind != tt.want || r.Status != tt.status {
			t.Errorf("%s: kind %s status %q, want %s %q", tt.status, r.Kind, r.Status, tt.want, tt.status)
		}
	}
}
