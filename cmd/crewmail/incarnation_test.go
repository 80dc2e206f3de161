package main

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"

	"crewmail/internal/mailtest"
)

// TestLinksOfARemovedListDoNothingOnItsSuccessor: a list removed and created again at the same
// address numbers its members and posts from 1 again; the links and addresses mailed for the
// old list (one-click unsubscribe, bounce address, Reply and Mute links) must not act on the
// new list's member 1 and post 1.
func TestLinksOfARemovedListDoNothingOnItsSuccessor(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "bob@example.test", "alice@example.test")
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Old news", "old@example.test", "x\r\n")); err != nil {
		t.Fatal(err)
	}
	var oneClick, verp string
	for _, m := range sink.Wait(t, 2) {
		if m.To[0] != "bob@example.test" {
			continue
		}
		h, err := mail.CreateReader(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		oneClick = strings.Trim(strings.Split(h.Header.Get("List-Unsubscribe"), ",")[0], "<>")
		verp = m.From
	}
	if !strings.Contains(oneClick, "/u/") || !strings.HasPrefix(verp, "crew+bounces-") {
		t.Fatalf("bob's copy: one-click %q, return path %q", oneClick, verp)
	}
	reply, mute := ts.svc.ReplyAddress(crew, 1), ts.svc.MuteAddress(crew, 1)
	settle(t, ts)

	ts.mustCLI(t, "list", "rm", crew)
	ts.mustCLI(t, "list", "create", crew, "-post", "anyone")
	ts.mustCLI(t, "member", "add", crew, "carol@example.test") // member 1 again
	if err := send(t, ts.SMTPAddr, "carol@example.test", []string{crew}, post("carol@example.test", "New news", "new@example.test", "y\r\n")); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 3)
	settle(t, ts)

	resp, err := http.PostForm(oneClick, url.Values{"List-Unsubscribe": {"One-Click"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the old list's one-click link on the new list: %d", resp.StatusCode)
	}
	if !strings.Contains(members(t, ts), "carol@example.test") {
		t.Fatal("the old list's one-click link unsubscribed the new list's member 1")
	}
	for _, rcpt := range []string{verp, reply, mute} {
		if err := send(t, ts.SMTPAddr, "carol@example.test", []string{rcpt}, post("carol@example.test", "Re: New news", "r-"+rcpt, "z\r\n")); smtpCode(err) != "550 5.1.1" {
			t.Errorf("mail to the old list's %s: %s", rcpt, smtpCode(err))
		}
	}
	settle(t, ts)
	if n := len(sink.Messages()); n != 3 {
		t.Errorf("old links made the new list send mail: %d messages", n)
	}
}
