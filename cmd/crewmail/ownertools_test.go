package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"crewmail/internal/mailtest"
)

// askSubject is ask with a subject: a proven mail from addr to to.
func askSubject(t *testing.T, ts *testServer, addr, to, subject, body string) error {
	t.Helper()
	msg := fmt.Appendf(nil, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <s%d@client.example.test>\r\n\r\n%s", addr, to, subject, time.Now().UnixNano(), body)
	return send(t, ts.SMTPAddr, addr, []string{to}, msg)
}

// TestCommandsReadLikePeopleWrite: the answer names the address the mail went to; a subject
// word is a command only when the text has none; a typo gets "did you mean", once; the
// greeting and signature after a command are not answered.
func TestCommandsReadLikePeopleWrite(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	request := "crew-request@" + testDomain

	// "Subject: unsubscribe" over a text that asks for a daily digest: only the digest.
	if err := askSubject(t, ts, "alice@example.test", request, "unsubscribe", "daily\r\n\r\nThanks so much for running this!\r\nAlice\r\n"); err != nil {
		t.Fatal(err)
	}
	r := expect(t, sink, 1, "alice@example.test", "This is what became of your mail to "+request+":", "daily")
	if txt := text(t, r); strings.Contains(txt, "not a command") || strings.Contains(txt, "Thanks so much") || strings.Contains(txt, "unsubscribe:") {
		t.Errorf("the subject ran, or the prose after the command was answered:\n%s", txt)
	}
	if !strings.Contains(members(t, ts), "alice@example.test  daily") {
		t.Errorf("alice is not on the list in daily mode:\n%s", members(t, ts))
	}

	// A typo: "did you mean", once, without the whole list of commands.
	if err := askSubject(t, ts, "bob@example.test", request, "", "dayly\r\nweelky\r\n"); err != nil {
		t.Fatal(err)
	}
	r = expect(t, sink, 2, "bob@example.test", `"dayly": not a command. Did you mean daily?`)
	if txt := text(t, r); strings.Count(txt, "Did you mean") != 1 || strings.Contains(txt, "the commands are") || strings.Contains(txt, "weelky") {
		t.Errorf("the answer to two typos:\n%s", txt)
	}

	// The answer to a command address names that address, not crew-request@.
	if err := askSubject(t, ts, "carol@example.test", "crew+password@"+testDomain, "", ""); err != nil {
		t.Fatal(err)
	}
	expect(t, sink, 3, "carol@example.test", "This is what became of your mail to crew+password@"+testDomain+":")
}
