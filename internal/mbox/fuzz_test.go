package mbox

import (
	"bytes"
	"testing"
	"time"
)

// The seed corpus is in testdata/fuzz; "go test" runs it, "scripts/fuzz" or
// "go test -fuzz=FuzzRead ./internal/mbox" explores further.

// FuzzRead reads arbitrary bytes as an mbox (an operator imports files other programs wrote):
// never a panic; every message it gives is lines ending in CRLF; and the messages, written
// out again and read back, are the same messages with the same dates.
func FuzzRead(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		type msg struct {
			raw      []byte
			received time.Time
		}
		var got []msg
		if err := Read(bytes.NewReader(in), func(raw []byte, received time.Time) error {
			if len(raw) == 0 || !bytes.HasSuffix(raw, []byte("\r\n")) {
				t.Fatalf("message %q does not end with CRLF", raw)
			}
			got = append(got, msg{bytes.Clone(raw), received})
			return nil
		}); err != nil {
			return
		}
		var out bytes.Buffer
		w := NewWriter(&out)
		for _, m := range got {
			// A line ending in CR before its CRLF loses that CR on the way out (mbox lines
			// end in LF, and a CR before it is read as the CRLF's): no message of SMTP's
			// has one, as smtpd refuses bare CR.
			if bytes.Contains(m.raw, []byte("\r\r\n")) {
				return
			}
			if err := w.Write("a@example.test", m.received, m.raw); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		i := 0
		if err := Read(&out, func(raw []byte, received time.Time) error {
			if i >= len(got) || !bytes.Equal(raw, got[i].raw) || !received.Equal(got[i].received) {
				t.Fatalf("message %d came back as %q %v", i, raw, received)
			}
			i++
			return nil
		}); err != nil || i != len(got) {
			t.Fatalf("read back %d of %d messages: %v", i, len(got), err)
		}
	})
}
