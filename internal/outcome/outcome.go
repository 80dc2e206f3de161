// Package outcome is the result of one delivery attempt as data: the step it ended at, the
// SMTP reply code, the enhanced status code (RFC 3463) and the server's own text. It travels
// unchanged from the delivery workers to bounce accounting, metrics and logs, so that no
// decision is ever made by reading prose.
package outcome

import (
	"fmt"
	"strconv"
	"strings"
)

// Step is where an attempt ended.
type Step string

// The steps of an attempt, in order.
const (
	Local   Step = "local"   // before any connection: composing, signing, looking up the destination
	Connect Step = "connect" // TCP connection and greeting
	TLS     Step = "tls"     // STARTTLS or the TLS handshake
	Hello   Step = "ehlo"    // EHLO, and AUTH with a smarthost
	Mail    Step = "mail"    // MAIL FROM
	Rcpt    Step = "rcpt"    // RCPT TO
	Data    Step = "data"    // DATA and the message
	Done    Step = "done"    // the message was taken
)

// Result is how one attempt ended.
type Result struct {
	Step      Step   `json:"step"`
	Code      int    `json:"code,omitempty"`   // SMTP reply code; 0 when the server gave none
	Status    string `json:"status,omitempty"` // enhanced status code such as "5.7.1"; "" when none
	Text      string `json:"text,omitempty"`   // the server's text, or our error when there was no reply
	Permanent bool   `json:"permanent,omitempty"`
	Refused   bool   `json:"refused,omitempty"` // the connection was refused
	Remote    string `json:"remote,omitempty"`  // the address that answered (host:port)
	// GaveUp: temporary failures went on until the mail was too old to retry.
	GaveUp bool `json:"gave_up,omitempty"`
}

// OK reports whether the message was taken.
func (r Result) OK() bool { return r.Step == Done }

// Class is the status code's class: 2, 4 or 5; from the reply code when there is no enhanced
// status; 0 when neither says.
func (r Result) Class() int {
	if c, ok := statusClass(r.Status); ok {
		return c
	}
	if r.Code >= 200 && r.Code < 600 {
		return r.Code / 100
	}
	return 0
}

// Policy reports whether the refusal was for policy, reputation, authentication or DMARC: a
// permanent 5.7.x (RFC 3463 §3.8, RFC 7372). It is the sender's (the list's, its server's)
// problem, not the recipient's.
func (r Result) Policy() bool {
	return strings.HasPrefix(r.Status, "5.7.")
}

// Throttled reports whether the destination asked us to slow down: a 421 (the server is
// closing the session, RFC 5321 §3.8), 4.7.28 (rate limited, RFC 7372 registry), a temporary
// reply whose text says so, or a refused connection.
func (r Result) Throttled() bool {
	return r.Refused || r.Code == 421 || r.RateLimited()
}

// RateLimited reports whether a temporary reply says we send too much: 4.7.28, or its text
// says "rate" or "too many". (A bare 421 may be no more than an idle session timing out.)
func (r Result) RateLimited() bool {
	if r.Status == "4.7.28" {
		return true
	}
	if r.Code >= 400 && r.Code < 500 {
		t := strings.ToLower(r.Text)
		return strings.Contains(t, "rate") || strings.Contains(t, "too many")
	}
	return false
}

// IPv4Only reports whether the server refused us over IPv6 for want of what IPv4 would have
// (5.7.25: no reverse DNS for the client address; Gmail's reply to IPv6 without PTR).
func (r Result) IPv4Only() bool { return r.Status == "5.7.25" || r.Status == "4.7.25" }

// String is the result in one line, as the server said it: "rcpt: 550 5.1.1 no such user".
func (r Result) String() string {
	var b strings.Builder
	b.WriteString(string(r.Step))
	b.WriteString(":")
	if r.Code != 0 {
		b.WriteString(" " + strconv.Itoa(r.Code))
	}
	if r.Status != "" {
		b.WriteString(" " + r.Status)
	}
	if r.Text != "" {
		b.WriteString(" " + r.Text)
	}
	if r.Remote != "" {
		fmt.Fprintf(&b, " (%s)", r.Remote)
	}
	if r.GaveUp {
		b.WriteString(" [retries exhausted]")
	}
	return b.String()
}

func statusClass(s string) (int, bool) {
	if len(s) < 5 || s[1] != '.' {
		return 0, false
	}
	switch s[0] {
	case '2', '4', '5':
		return int(s[0] - '0'), true
	}
	return 0, false
}
