package dsn

import (
	"testing"

	"crewmail/internal/mailtest"
	"crewmail/internal/mimetree"
)

// A bounce's parts are read as deep as mimetree looks, and no deeper: the status nested 10,000
// multiparts down is not read (the sender and subject still say it is a bounce), and finding
// that out costs a few passes over the message.
func TestNestedBounceIsReadToTheLimit(t *testing.T) {
	const hdr = "From: MAILER-DAEMON@relay.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\n"
	const status = "550 5.1.1 <bob@example.org>: user unknown"
	for _, tc := range []struct {
		name   string
		levels int
		code   string
	}{
		{"at the limit", mimetree.Default.Depth, "5.1.1"},
		{"one level beyond", mimetree.Default.Depth + 1, ""},
		{"10,000 levels", 10000, ""},
	} {
		r, err := Parse(mailtest.NestedMultipart(hdr, tc.levels, status))
		if err != nil || r.Kind != Failed || r.Status != tc.code {
			t.Errorf("%s: Parse = %s, %v; want failed %q", tc.name, show(r), err, tc.code)
		}
	}
}
