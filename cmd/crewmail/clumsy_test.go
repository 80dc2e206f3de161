package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"crewmail/internal/mailtest"
)

// These tests do what members and owners do when they are not reading closely: Reply All on a
// digest, a post that says only "unsubscribe", a reply to a notice with a question, "no" to a
// confirmation. Replies are shaped like the mail clients of the test corpus.

// appleMailReply is a reply from Apple Mail on an iPhone (after the replytext fixture
// apple-iphone-qp.eml): quoted-printable, the text on top, "Sent from my iPhone", the
// quotation below an attribution.
func appleMailReply(from, to, subject, msgid, inReplyTo, said, quoted string) []byte {
	q := "> " + strings.ReplaceAll(strings.TrimSpace(quoted), "\n", "\r\n> ")
	return fmt.Appendf(nil, "Content-Type: text/plain;\r\n\tcharset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\nFrom: Someone <%s>\r\n"+
		"Mime-Version: 1.0 (1.0)\r\nDate: Wed, 25 Nov 2026 10:31:02 +0000\r\nSubject: Re: %s\r\nMessage-Id: <%s>\r\nReferences: <%s>\r\nIn-Reply-To: <%s>\r\n"+
		"To: %s\r\nX-Mailer: iPhone Mail (22B91)\r\n\r\n%s\r\n\r\nSent from my iPhone\r\n\r\n> On 25 Nov 2026, at 10:00, Garden crew <%s> wrote:\r\n>=20\r\n%s\r\n",
		from, subject, msgid, inReplyTo, inReplyTo, to, said, to, strings.ReplaceAll(q, "=", "=3D"))
}

var replyStyles = []struct {
	name  string
	style replyStyle
}{{"Thunderbird", thunderbirdReply}, {"Gmail", gmailReply}, {"Outlook", outlookHTMLReply}, {"Apple Mail", appleMailReply}}

// header is field of m as sent.
func header(t *testing.T, m mailtest.Message, field string) string {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	return r.Header.Get(field)
}

// replyAll builds a reply to m in style from addr, as Reply All makes it: to its Reply-To, with
// the list copied.
func replyAll(t *testing.T, m mailtest.Message, style replyStyle, addr, said string, cc ...string) []byte {
	t.Helper()
	to := replyAddress(t, m)
	h, err := mail.CreateReader(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := h.Header.Subject()
	id, _ := h.Header.MessageID()
	_, quoted, _ := strings.Cut(text(t, m), "\r\n\r\n")
	msg := style(addr, to, subject, fmt.Sprintf("r%d@client.example.test", time.Now().UnixNano()), id, said, strings.ReplaceAll(quoted[:min(len(quoted), 400)], "\r\n", "\n"))
	if len(cc) > 0 {
		msg = append([]byte("Cc: "+strings.Join(cc, ", ")+"\r\n"), msg...)
	}
	return msg
}

// TestReplyAllOnDigestIsNotPosted: a digest goes To the member with Reply-To crew+digest@;
// Reply All (which copies crew@) and a reply to crew@ alone, from any client, post nothing,
// and the member gets one answer with the links and their text back.
func TestReplyAllOnDigestIsNotPosted(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	ts.mustCLI(t, "member", "mode", crew, "bob@example.test", "daily")
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Seeds", "seeds@example.test", "About seeds.\r\n")); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 1)
	settle(t, ts)
	ts.mustCLI(t, "digest", "send", "-now")
	d := expect(t, sink, 2, "bob@example.test", "Reply-To: <crew+digest@"+testDomain+">")
	if to := header(t, d, "To"); to != "<bob@example.test>" {
		t.Fatalf("the digest is addressed To %q, want the member", to)
	}
	digestAddr := "crew+digest@" + testDomain
	n := 2
	for i, s := range replyStyles {
		said := fmt.Sprintf("Thanks for the digest, number %d!", i)
		// Reply All: to crew+digest@, the list copied.
		msg := replyAll(t, d, s.style, "bob@example.test", said, crew)
		if err := send(t, ts.SMTPAddr, "bob@example.test", []string{digestAddr, crew}, msg); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		n++
		note := expect(t, sink, n, "bob@example.test", "was not posted", "Seeds")
		if !bytes.Contains(note.Data, []byte("number "+fmt.Sprint(i))) {
			t.Errorf("%s: the answer does not carry bob's mail back:\n%s", s.name, note.Data)
		}
		// A client that ignores Reply-To answers the From, crew@ alone.
		msg = replyAll(t, d, s.style, "bob@example.test", said+" again")
		if err := send(t, ts.SMTPAddr, "bob@example.test", []string{crew}, msg); err != nil {
			t.Fatalf("%s to crew@: %v", s.name, err)
		}
		n++
		expect(t, sink, n, "bob@example.test", "was not posted")
	}
	if got := mailsTo(t, ts, sink, "alice@example.test"); len(got) != 1 {
		t.Errorf("alice got %d mails, want only her own post: a reply to the digest was posted", len(got))
	}
	if got := mailsTo(t, ts, sink, "bob@example.test"); len(got) != n-1 {
		t.Errorf("bob got %d mails, want the digest and one answer per reply (%d)", len(got), n-2)
	}
	if arch := ts.mustCLI(t, "archive", "ls", crew); strings.Count(arch, "\n") != 2 {
		t.Errorf("the archive holds more than alice's post:\n%s", arch)
	}
}
