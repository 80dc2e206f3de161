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
	return replyTo(t, m, replyAddress(t, m), style, addr, said, cc...)
}

// replyTo builds a reply to m in style from addr to to, copied to cc.
func replyTo(t *testing.T, m mailtest.Message, to string, style replyStyle, addr, said string, cc ...string) []byte {
	t.Helper()
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

// among waits for the sink's first n messages and returns the one of those after the first
// from that went to to, checking that its text holds each of want.
func among(t *testing.T, sink *mailtest.Sink, from, n int, to string, want ...string) mailtest.Message {
	t.Helper()
	for _, m := range sink.Wait(t, n)[from:n] {
		if m.To[0] != to {
			continue
		}
		txt := text(t, m)
		for _, w := range want {
			if !strings.Contains(txt, w) {
				t.Fatalf("mail to %s lacks %q:\n%s", to, w, txt)
			}
		}
		return m
	}
	t.Fatalf("none of mails %d to %d went to %s", from+1, n, to)
	return mailtest.Message{}
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

// TestSayingNoToAConfirmation: a reply to a confirmation that says no in its own words (from
// any client, in any of six languages) confirms nothing and is told so; an owner's "No - who
// is this?" declines without sending the owner's words to the requester.
func TestSayingNoToAConfirmation(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	ts.mustCLI(t, "list", "set", crew, "-join", "open", "-owner", owner)
	n := 0
	refusals := []string{"NO. I never asked for this. Please remove me.", "Nein, das habe ich nicht angefordert.", "Non merci, ce n'est pas moi.", "No, yo no lo pedí.", "Nee, dit heb ik niet aangevraagd.", "Nej tack, det var inte jag."}
	for i, said := range refusals {
		s := replyStyles[i%len(replyStyles)]
		addr := fmt.Sprintf("stranger%d@example.test", i)
		if err := ask(t, ts, addr, "crew+subscribe@"+testDomain, "", false); err != nil {
			t.Fatal(err)
		}
		n++
		c := expect(t, sink, n, addr, "crew+confirm-")
		if err := answer(t, ts, c, s.style, addr, said, i%2 == 0); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		n++
		expect(t, sink, n, addr, "nothing was done", "you did not join")
		if strings.Contains(members(t, ts), addr) {
			t.Errorf("%s (%q from %s) joined", addr, said, s.name)
		}
	}
	// Leaving: "no" keeps alice; "yes, unsubscribe me" lets her go.
	if err := ask(t, ts, "alice@example.test", "crew+unsubscribe@"+testDomain, "", true); err != nil {
		t.Fatal(err)
	}
	n++
	c := expect(t, sink, n, "alice@example.test", "crew+confirm-")
	if err := answer(t, ts, c, appleMailReply, "alice@example.test", "No, I want to stay!", true); err != nil {
		t.Fatal(err)
	}
	n++
	expect(t, sink, n, "alice@example.test", "nothing was done", "still a member")
	if !strings.Contains(members(t, ts), "alice@") {
		t.Fatal("alice left though she said no")
	}
	if err := answer(t, ts, c, gmailReply, "alice@example.test", "Yes, please unsubscribe me.", true); err != nil {
		t.Fatal(err)
	}
	n += 2 // the goodbye, and the owners' notice
	goodbye := among(t, sink, n-2, n, "alice@example.test", "You have left")
	if got := replyAddress(t, goodbye); got != "crew+owner@"+testDomain {
		t.Errorf("a reply to the goodbye goes to %s, want the owners", got)
	}
	settle(t, ts)

	// The owner declines in words meant for the owners only.
	ts.mustCLI(t, "list", "set", crew, "-join", "approve")
	n = len(sink.Messages())
	if err := ask(t, ts, "dave@example.test", "crew+subscribe@"+testDomain, "", true); err != nil {
		t.Fatal(err)
	}
	n++
	c = expect(t, sink, n, "dave@example.test", "crew+confirm-")
	if err := answer(t, ts, c, thunderbirdReply, "dave@example.test", "Yes", true); err != nil {
		t.Fatal(err)
	}
	n += 2
	req := among(t, sink, n-2, n, owner, "asks to join")
	if err := answer(t, ts, req, outlookHTMLReply, owner, "No - who is this? I don't know them.", true); err != nil {
		t.Fatal(err)
	}
	n += 2 // the requester's answer, and the owner's acknowledgement, in no fixed order
	declined := among(t, sink, n-2, n, "dave@example.test", "was not accepted")
	if strings.Contains(text(t, declined), "who is this") || strings.Contains(text(t, declined), "know them") {
		t.Errorf("the owner's words reached the requester:\n%s", text(t, declined))
	}
	if got := replyAddress(t, declined); got != "crew+owner@"+testDomain {
		t.Errorf("a reply to the declined request goes to %s, want the owners", got)
	}
	if strings.Contains(members(t, ts), "dave") {
		t.Error("dave joined though declined")
	}
}

// TestStrayCommandsAreNotPosted: "unsubscribe" (or "remove me", "set digest on") sent to the
// list from any client, and a mail with neither subject nor text, reach no member; the author
// hears what to do instead, and an owner can send it on.
func TestStrayCommandsAreNotPosted(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	ts.mustCLI(t, "list", "set", crew, "-owner", owner)
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Seeds", "seeds@example.test", "The seeds are in.\r\n")); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 2)
	settle(t, ts)
	seeds := sink.Messages()[0]
	n := 2
	for i, said := range []string{"unsubscribe", "Please remove me from the list.", "set digest on", "UNSUBSCRIBE"} {
		s := replyStyles[i]
		if err := send(t, ts.SMTPAddr, "bob@example.test", []string{crew}, replyTo(t, seeds, crew, s.style, "bob@example.test", said)); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		n += 2 // the answer to bob, the post to the owner
		among(t, sink, n-2, n, "bob@example.test", "was not sent to", "looks like a command", "crew+unsubscribe@"+testDomain)
		among(t, sink, n-2, n, owner, "waits for", "looks like a command")
	}
	// Neither subject nor text.
	empty := fmt.Appendf(nil, "From: bob@example.test\r\nTo: %s\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <empty@example.test>\r\n\r\n\r\n", crew)
	if err := send(t, ts.SMTPAddr, "bob@example.test", []string{crew}, empty); err != nil {
		t.Fatal(err)
	}
	n += 2
	among(t, sink, n-2, n, "bob@example.test", "neither a subject nor any text")
	// A real post whose subject is a command word still goes out.
	if err := send(t, ts.SMTPAddr, "bob@example.test", []string{crew}, post("bob@example.test", "Help", "help@example.test", "My tomatoes have spots; what do I do?\r\n")); err != nil {
		t.Fatal(err)
	}
	n += 2
	among(t, sink, n-2, n, "alice@example.test", "tomatoes have spots")
	if got := mailsTo(t, ts, sink, "alice@example.test"); len(got) != 2 {
		t.Errorf("alice got %d mails, want the two posts; a stray command went to the list", len(got))
	}
	// The owner sends one on.
	held := ts.mustCLI(t, "held", "ls", crew)
	if strings.Count(held, "looks like a command") != 4 {
		t.Fatalf("held ls:\n%s", held)
	}
	id := strings.Fields(strings.Split(held, "\n")[1])[0]
	ts.mustCLI(t, "held", "approve", crew, id)
	if got := mailsTo(t, ts, sink, "alice@example.test"); len(got) != 3 {
		t.Errorf("alice got %d mails after the owner sent a held one on, want 3", len(got))
	}
}

// TestRepliesReachPeople: a reply to the welcome, from any client, reaches the owners (its
// Reply-To is crew+owner@); a question mailed to the help robot is passed to the owners and
// its sender told so, while "help" still gets the help.
func TestRepliesReachPeople(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	ts.mustCLI(t, "list", "set", crew, "-join", "open", "-owner", owner)
	ownerAddr := "crew+owner@" + testDomain
	if err := ask(t, ts, "ivy@example.test", "crew+subscribe@"+testDomain, "", true); err != nil {
		t.Fatal(err)
	}
	c := expect(t, sink, 1, "ivy@example.test", "crew+confirm-")
	if err := answer(t, ts, c, thunderbirdReply, "ivy@example.test", "yes", true); err != nil {
		t.Fatal(err)
	}
	welcome := among(t, sink, 1, 3, "ivy@example.test", "Welcome to Garden crew")
	if got := replyAddress(t, welcome); got != ownerAddr {
		t.Fatalf("a reply to the welcome goes to %s, want %s", got, ownerAddr)
	}
	n := 3
	for i, s := range replyStyles {
		q := fmt.Sprintf("Thanks! Question %d: is there a meeting this week?", i)
		if err := answer(t, ts, welcome, s.style, "ivy@example.test", q, true); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		n++
		expect(t, sink, n, owner, fmt.Sprintf("Question %d", i))
	}
	// Questions to the help robot, at both its addresses.
	for _, to := range []string{"crew+help@" + testDomain, "crew-request@" + testDomain} {
		if err := ask(t, ts, "ivy@example.test", to, "How do I get only one mail a day?\r\n", true); err != nil {
			t.Fatal(err)
		}
		n += 2
		among(t, sink, n-2, n, owner, "How do I get only one mail a day?")
		among(t, sink, n-2, n, "ivy@example.test", "went to the owners")
	}
	// A command is still a command.
	if err := ask(t, ts, "ivy@example.test", "crew+help@"+testDomain, "help\r\n", true); err != nil {
		t.Fatal(err)
	}
	n++
	expect(t, sink, n, "ivy@example.test", "crew+unsubscribe@"+testDomain)
	if got := mailsTo(t, ts, sink, owner); len(got) != 7 {
		t.Errorf("the owner got %d mails, want the join notice, four replies and two questions", len(got))
	}
}

// TestNeverSilentToAPerson: an address not on the list asking to leave or change mode hears
// so, and how to find the address that is; "already a member" is answered; repeats past the
// hour's limit are named in the next answer, which the last one before the pause announces;
// automatic mail still gets nothing.
func TestNeverSilentToAPerson(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	ts.mustCLI(t, "list", "set", crew, "-owner", owner)
	n := 0
	for _, to := range []string{"crew+unsubscribe@", "crew+daily@", "crew-request@"} {
		body := ""
		if to == "crew-request@" {
			body = "nomail\r\n"
		}
		if err := ask(t, ts, "ann.alias@example.test", to+testDomain, body, true); err != nil {
			t.Fatal(err)
		}
		n++
		expect(t, sink, n, "ann.alias@example.test", "is not on the list", "List-Unsubscribe", "crew+owner@"+testDomain)
	}
	if err := ask(t, ts, "alice@example.test", "crew+subscribe@"+testDomain, "", true); err != nil {
		t.Fatal(err)
	}
	n++
	expect(t, sink, n, "alice@example.test", "already a member")
	// Automatic mail: nothing.
	auto := []byte("From: ann.alias@example.test\r\nTo: crew+unsubscribe@" + testDomain + "\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <ooo@example.test>\r\n\r\nAway.\r\n")
	if err := send(t, ts.SMTPAddr, "ann.alias@example.test", []string{"crew+unsubscribe@" + testDomain}, auto); err != nil {
		t.Fatal(err)
	}
	if got := mailsTo(t, ts, sink, "ann.alias@example.test"); len(got) != 3 {
		t.Errorf("ann got %d mails, want 3 (none for the out-of-office)", len(got))
	}
	// Bob's address, unproven, asks to leave eight times in the hour: three answers, the
	// third saying until when answers pause; the next after the pause names the others.
	for range 8 {
		if err := ask(t, ts, "bob@example.test", "crew+unsubscribe@"+testDomain, "", false); err != nil {
			t.Fatal(err)
		}
	}
	got := mailsTo(t, ts, sink, "bob@example.test")
	if len(got) != unprovenAnswersPerHourForTest {
		t.Fatalf("bob got %d mails for 8 requests, want %d", len(got), unprovenAnswersPerHourForTest)
	}
	if last := text(t, got[len(got)-1]); !strings.Contains(last, "no more") || !strings.Contains(last, "answers until") {
		t.Errorf("the last answer before the pause does not say so:\n%s", last)
	}
	ts.clock.Advance(61 * time.Minute)
	if err := ask(t, ts, "bob@example.test", "crew+unsubscribe@"+testDomain, "", false); err != nil {
		t.Fatal(err)
	}
	got = mailsTo(t, ts, sink, "bob@example.test")
	if len(got) != unprovenAnswersPerHourForTest+1 {
		t.Fatalf("bob got %d mails after the pause, want %d", len(got), unprovenAnswersPerHourForTest+1)
	}
	if next := text(t, got[len(got)-1]); !strings.Contains(next, "While answers to you were paused") || !strings.Contains(next, "to crew+unsubscribe@"+testDomain) {
		t.Errorf("the answer after the pause does not name the mails that came during it:\n%s", next)
	}
}
