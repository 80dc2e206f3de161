package dsn

import (
	"os"
	"path/filepath"
	"testing"

	"crewmail/internal/mailtest"
	"crewmail/internal/rawmsg"
)

// TestCorpus reads every message of the real-mail corpus's mime/ and malformed/ folders: an
// error exactly when the header cannot be read (as rawmsg reads it for every package), the
// reports and bounces among them for what they are, and the rest as nothing.
func TestCorpus(t *testing.T) {
	want := map[string]Report{
		"67-mdn-disposition-notification.eml": {Kind: AutoReply, Recipient: "joe_recipient@example.com"},
		"68-arf-feedback-report-aol.eml":      {Kind: Policy}, // the address is redacted
		"69-dsn-bounce.eml": {Kind: Failed, Status: "5.1.1",
			Recipient: "asdfasdfasdfasdfasdfasdfewrqertrtyrthsfgdfgadfqeadvxzvz@gmail.com"},
		// A 1996 bounce whose boundary never appears: read as text, it says "undeliverable".
		"18-bad-boundary-bounce.eml": {Kind: Failed, Recipient: "pnet@uscom.com"},
		// A multipart/report without a boundary: its subject says "(Failure)".
		"27-multipart-without-boundary.eml": {Kind: Failed},
	}
	seen := 0
	for _, file := range mailtest.Corpus(t, "mime", "malformed") {
		name := filepath.Base(file)
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		msg := mailtest.SMTPForm(raw)
		r, err := Parse(msg)
		if _, herr := rawmsg.ReadHeader(msg); (err != nil) != (herr != nil) {
			t.Errorf("%s: Parse: %v; rawmsg.ReadHeader: %v", name, err, herr)
			continue
		}
		w, ok := want[name]
		if ok {
			seen++
		}
		if r.Kind != w.Kind || ok && (r.Status != w.Status || r.Recipient != w.Recipient) {
			t.Errorf("%s: Parse = %s, want %v %q %q", name, show(r), w.Kind, w.Status, w.Recipient)
		}
	}
	if seen != len(want) {
		t.Errorf("%d of the %d messages named here are in the corpus", seen, len(want))
	}
}

// TestCorpusThreads: none of the list messages of the corpus's threads/ is a bounce.
func TestCorpusThreads(t *testing.T) {
	for _, file := range mailtest.Corpus(t, "threads") {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := Parse(mailtest.SMTPForm(raw)); r.Kind != Unknown {
			t.Errorf("%s: Parse = %s, want unknown", filepath.Base(file), show(r))
		}
	}
}
