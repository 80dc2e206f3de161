package mbox

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestMboxWithoutFinalEmptyLine: an mbox whose last message is not followed by an empty line
// keeps that message's last line break.
func TestMboxWithoutFinalEmptyLine(t *testing.T) {
	var got [][]byte
	in := "From a@example.test Wed Nov 25 10:00:00 2026\nSubject: one\n\nfirst\n\nFrom b@example.test Wed Nov 25 10:01:00 2026\nSubject: two\n\nsecond\n"
	if err := Read(strings.NewReader(in), func(raw []byte, _ time.Time) error { got = append(got, raw); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[0]) != "Subject: one\r\n\r\nfirst\r\n" || string(got[1]) != "Subject: two\r\n\r\nsecond\r\n" {
		t.Errorf("read %q", got)
	}
}

// TestWriteReadRoundTrip: messages written and read back are the messages, byte for byte,
// whatever "From " lines (quoted or not) their bodies hold, with the date of each.
func TestWriteReadRoundTrip(t *testing.T) {
	msgs := []string{
		"Subject: one\r\n\r\nFrom the garden:\r\n>From the shed\r\n>>From far away\r\nFromage\r\n",
		"Subject: two\r\n\r\nends with an empty line\r\n\r\n",
		"Subject: three\r\n\r\n\r\nFrom here\r\n",
	}
	when := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	w := NewWriter(&out)
	for i, m := range msgs {
		from := "a@example.test"
		if i == 1 {
			from = ""
		}
		if err := w.Write(from, when.Add(time.Duration(i)*time.Minute), []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\n>From the garden:\n", "\n>>From the shed\n", "\n>>>From far away\n", "\nFromage\n", "\n>From here\n", "From MAILER-DAEMON Wed Nov 25 10:01:00 2026\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the mbox lacks %q:\n%s", want, out.String())
		}
	}
	i := 0
	err := Read(&out, func(raw []byte, received time.Time) error {
		if i >= len(msgs) || string(raw) != msgs[i] || !received.Equal(when.Add(time.Duration(i)*time.Minute)) {
			t.Errorf("message %d read back as %q, %v", i, raw, received)
		}
		i++
		return nil
	})
	if err != nil || i != len(msgs) {
		t.Errorf("read %d of %d messages: %v", i, len(msgs), err)
	}
	if err := Read(strings.NewReader("Subject: not mbox\n\nhello\n"), func([]byte, time.Time) error { return nil }); err == nil {
		t.Error("a file that is no mbox was read")
	}
}
