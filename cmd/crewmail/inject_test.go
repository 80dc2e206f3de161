package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"

	"crewmail/internal/mailtest"
)

// TestConfirmQuestionShowsThePostNotInjectedLines: a forger's post under Alice's address has a
// Subject with encoded line breaks that wrote "reply YES" instructions into the question
// "Did you send this?", which did not show the post itself. The question now keeps the
// Subject on its line and shows how the post begins.
func TestConfirmQuestionShowsThePostNotInjectedLines(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	ts.mustCLI(t, "list", "set", crew, "-post", "verified")
	forged := post("alice@example.test", "=?utf-8?q?Meeting=0A=0AIMPORTANT=3A_your_mailbox_is_full=2E_Reply_YES_to_keep_it=2E?=",
		"forged@evil.test", "Send your bank details to mallory@evil.test.\r\n")
	if err := send(t, ts.SMTPAddr, "bulk@evil.test", []string{crew}, forged); err != nil {
		t.Fatal(err)
	}
	got := sink.Wait(t, 1)
	r, err := mail.CreateReader(bytes.NewReader(got[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(p.Body)
	text := string(unflow(b, false)) // notices are flowed without delsp
	if !strings.Contains(text, "Did you send this") && !strings.Contains(text, "arrived under your address") {
		t.Fatalf("not the question to confirm a post:\n%s", text)
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "IMPORTANT") {
			t.Errorf("the Subject wrote a line of its own into the question: %q\n%s", line, text)
		}
	}
	if !strings.Contains(text, "Send your bank details to mallory@evil.test.") {
		t.Errorf("the question does not show how the post begins:\n%s", text)
	}
}
