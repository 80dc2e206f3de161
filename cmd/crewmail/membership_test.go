package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"golang.org/x/crypto/bcrypt"

	"crewmail/internal/mailtest"
	"crewmail/store"
)

// These tests drive the membership flows of a list the way people do: from a mail client, by
// sending to the list's command addresses and replying to what comes back, with the server's
// mail captured by a real SMTP server.

const owner = "olga@example.test"

// text is what a person reads in a mail from crewmail: its header fields as sent, and the text
// of its first part decoded.
func text(t *testing.T, m mailtest.Message) string {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatalf("mail to %v does not parse: %v\n%s", m.To, err, m.Data)
	}
	p, err := r.NextPart()
	if err != nil {
		t.Fatalf("mail to %v has no text: %v\n%s", m.To, err, m.Data)
	}
	body, _ := io.ReadAll(p.Body)
	if _, params, err := p.Header.(*mail.InlineHeader).ContentType(); err == nil && params["format"] == "flowed" {
		body = unflow(body, params["delsp"] == "yes")
	}
	head, _, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
	return string(head) + "\r\n\r\n" + string(body)
}

// unflow reads format=flowed text as a mail program does (RFC 3676 §4.1, §4.4): without the
// space-stuffing, each line that ends in a space joined with the next (that space deleted when
// delsp=yes, RFC 3676 §4.2).
func unflow(text []byte, delsp bool) []byte {
	var b bytes.Buffer
	for line := range strings.SplitSeq(strings.TrimSuffix(strings.ReplaceAll(string(text), "\r\n", "\n"), "\n"), "\n") {
		line = strings.TrimPrefix(line, " ")
		soft := strings.HasSuffix(line, " ") && line != "-- "
		if soft && delsp {
			line = strings.TrimSuffix(line, " ")
		}
		b.WriteString(line)
		if !soft {
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

// replyAddress is where a reply to m goes: its Reply-To, else its From.
func replyAddress(t *testing.T, m mailtest.Message) string {
	t.Helper()
	h, err := mail.CreateReader(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"Reply-To", "From"} {
		if as, err := h.Header.AddressList(field); err == nil && len(as) == 1 {
			return as[0].Address
		}
	}
	t.Fatalf("no address to reply to:\n%s", m.Data)
	return ""
}

var confirmRE = regexp.MustCompile(`crew\+confirm-[a-z2-7]+@` + regexp.QuoteMeta(testDomain))

// confirmAddresses are the confirm addresses a notice names in its text, in order.
func confirmAddresses(t *testing.T, m mailtest.Message) []string {
	t.Helper()
	_, body, _ := strings.Cut(text(t, m), "\r\n\r\n")
	return confirmRE.FindAllString(body, -1)
}

// The ways people answer a mail, built after the replies of the test corpus (CREWMAIL_CORPUS):
// a Thunderbird reply with the text quoted below and a signature, a Gmail top-posted reply with
// an HTML alternative and the attribution wrapped over two lines, and an HTML-only reply from Outlook
// (quoted-printable, its own quoting in a div and a blockquote).
type replyStyle func(from, to, subject, msgid, inReplyTo, said, quoted string) []byte

func thunderbirdReply(from, to, subject, msgid, inReplyTo, said, quoted string) []byte {
	q := "> " + strings.ReplaceAll(strings.TrimSpace(quoted), "\n", "\r\n> ")
	return fmt.Appendf(nil, "Message-ID: <%s>\r\nDate: Wed, 25 Nov 2026 11:02:13 +0100\r\nMIME-Version: 1.0\r\nUser-Agent: Mozilla Thunderbird\r\n"+
		"Subject: Re: %s\r\nTo: %s\r\nReferences: <%s>\r\nFrom: Someone <%s>\r\nIn-Reply-To: <%s>\r\n"+
		"Content-Type: text/plain; charset=UTF-8; format=flowed\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"+
		"%s\r\n\r\nOn 25/11/2026 10:00, Garden crew wrote:\r\n%s\r\n\r\n-- \r\nSomeone\r\nhttps://someone.example.test/\r\n",
		msgid, subject, to, inReplyTo, from, inReplyTo, said, q)
}

func gmailReply(from, to, subject, msgid, inReplyTo, said, quoted string) []byte {
	q := "> " + strings.ReplaceAll(strings.TrimSpace(quoted), "\n", "\r\n> ")
	html := "<div dir=\"ltr\">" + said + "</div><br><div class=\"gmail_quote\"><div dir=\"ltr\" class=\"gmail_attr\">On Wed, Nov 25, 2026 at 10:00 AM Garden crew &lt;" + to + "&gt; wrote:<br></div><blockquote class=\"gmail_quote\">" +
		strings.ReplaceAll(strings.TrimSpace(quoted), "\n", "<br>") + "</blockquote></div>"
	return fmt.Appendf(nil, "MIME-Version: 1.0\r\nReferences: <%s>\r\nIn-Reply-To: <%s>\r\nFrom: Someone <%s>\r\nDate: Wed, 25 Nov 2026 11:05:41 +0100\r\n"+
		"Message-ID: <%s>\r\nSubject: Re: %s\r\nTo: Garden crew <%s>\r\nContent-Type: multipart/alternative; boundary=\"000000000000a1b2c3\"\r\n\r\n"+
		"--000000000000a1b2c3\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\n\r\n%s\r\n\r\nOn Wed, Nov 25, 2026 at 10:00 AM Garden crew <\r\n%s> wrote:\r\n\r\n%s\r\n\r\n"+
		"--000000000000a1b2c3\r\nContent-Type: text/html; charset=\"UTF-8\"\r\n\r\n%s\r\n\r\n--000000000000a1b2c3--\r\n",
		inReplyTo, inReplyTo, from, msgid, subject, to, said, to, q, html)
}

func outlookHTMLReply(from, to, subject, msgid, inReplyTo, said, quoted string) []byte {
	html := "<html><head><meta http-equiv=3D\"Content-Type\" content=3D\"text/html; charset=3Diso-8859-1\"></head><body>\r\n" +
		"<div style=3D\"font-family: Calibri\">" + said + "</div>\r\n<div><br></div>\r\n" +
		"<div id=3D\"divRplyFwdMsg\"><b>From:</b> Garden crew<br><b>Sent:</b> Wednesday, November 25, 2026 10:00<br><b>Subject:</b> " + subject + "</div>\r\n" +
		"<blockquote>" + strings.ReplaceAll(strings.TrimSpace(quoted), "\n", "<br>\r\n") + "</blockquote></body></html>\r\n"
	return fmt.Appendf(nil, "From: Someone <%s>\r\nTo: %s\r\nSubject: RE: %s\r\nThread-Topic: %s\r\nDate: Wed, 25 Nov 2026 10:10:00 +0000\r\n"+
		"Message-ID: <%s>\r\nReferences: <%s>\r\nIn-Reply-To: <%s>\r\nContent-Language: en-GB\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: text/html; charset=\"iso-8859-1\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n%s",
		from, to, subject, subject, msgid, inReplyTo, inReplyTo, html)
}

// answer replies to m in style, saying said, from addr; proven: sent from the address's own
// domain (SPF passes), else through a server that proves nothing.
func answer(t *testing.T, ts *testServer, m mailtest.Message, style replyStyle, addr, said string, proven bool) error {
	t.Helper()
	to := replyAddress(t, m)
	h, err := mail.CreateReader(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := h.Header.Subject()
	id, _ := h.Header.MessageID()
	_, quoted, _ := strings.Cut(text(t, m), "\r\n\r\n")
	quoted = strings.ReplaceAll(quoted, "\r\n", "\n")
	envFrom := "relay@elsewhere.example"
	if proven {
		envFrom = addr
	}
	msg := style(addr, to, subject, fmt.Sprintf("r%d@client.example.test", time.Now().UnixNano()), id, said, quoted)
	return send(t, ts.SMTPAddr, envFrom, []string{to}, msg)
}

// ask sends a mail from addr to a command address; proven as in answer.
func ask(t *testing.T, ts *testServer, addr, to, body string, proven bool) error {
	t.Helper()
	envFrom := "relay@elsewhere.example"
	if proven {
		envFrom = addr
	}
	msg := fmt.Appendf(nil, "From: %s\r\nTo: %s\r\nSubject: \r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <a%d@client.example.test>\r\n\r\n%s", addr, to, time.Now().UnixNano(), body)
	return send(t, ts.SMTPAddr, envFrom, []string{to}, msg)
}

// expect waits for the sink's message number n (counting from 1) and checks who it went to and
// that its text holds each of want.
func expect(t *testing.T, sink *mailtest.Sink, n int, to string, want ...string) mailtest.Message {
	t.Helper()
	m := sink.Wait(t, n)[n-1]
	txt := text(t, m)
	if m.To[0] != to {
		t.Fatalf("mail %d went to %v, want %s:\n%s", n, m.To, to, txt)
	}
	for _, w := range want {
		if !strings.Contains(txt, w) {
			t.Fatalf("mail %d to %s lacks %q:\n%s", n, to, w, txt)
		}
	}
	return m
}

// expectSome waits until everything sent has been delivered and returns the last mail to to
// whose text holds want[0], failing unless it holds every want: for mails that one event sends
// to several people at once, which arrive in no fixed order.
func expectSome(t *testing.T, ts *testServer, sink *mailtest.Sink, to string, want ...string) mailtest.Message {
	t.Helper()
	settle(t, ts)
	var found *mailtest.Message
	for _, m := range sink.Messages() {
		if m.To[0] == to && strings.Contains(text(t, m), want[0]) {
			found = &m
		}
	}
	if found == nil {
		t.Fatalf("no mail to %s says %q", to, want[0])
	}
	txt := text(t, *found)
	for _, w := range want[1:] {
		if !strings.Contains(txt, w) {
			t.Fatalf("the mail to %s lacks %q:\n%s", to, w, txt)
		}
	}
	return *found
}

// settle waits until everything sent has been delivered, so that moving the clock on does not
// make a delivery in flight look abandoned (and go out twice).
func settle(t *testing.T, ts *testServer) {
	t.Helper()
	ts.waitOutbox(t, "empty", func(rows []store.Delivery) bool { return len(rows) == 0 })
}

func members(t *testing.T, ts *testServer) string { return ts.mustCLI(t, "member", "ls", crew) }

func TestOpenJoinByReplyAndByConfirmAddress(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	ts.mustCLI(t, "list", "set", crew, "-join", "open", "-owner", owner)

	// Carol asks to join; the confirmation comes from its confirm address.
	if err := ask(t, ts, "carol@example.test", "crew+subscribe@"+testDomain, "please\r\n", false); err != nil {
		t.Fatal(err)
	}
	c := expect(t, sink, 1, "carol@example.test", "Subject: Confirm: join Garden crew", "Auto-Submitted: auto-replied")
	if !strings.HasPrefix(replyAddress(t, c), "crew+confirm-") {
		t.Fatalf("the confirmation cannot be answered by reply:\n%s", c.Data)
	}
	if strings.Contains(members(t, ts), "carol") {
		t.Fatal("carol joined before confirming")
	}
	// She answers from Thunderbird, quoting the confirmation under her own text.
	if err := answer(t, ts, c, thunderbirdReply, "carol@example.test", "yes please", false); err != nil {
		t.Fatalf("reply: %v", err)
	}
	got := sink.Wait(t, 3)
	byTo := map[string]mailtest.Message{}
	for _, m := range got[1:] {
		byTo[m.To[0]] = m
	}
	if w := text(t, byTo["carol@example.test"]); !strings.Contains(w, "Subject: Welcome to Garden crew") || !strings.Contains(w, "crew+daily@"+testDomain) {
		t.Errorf("welcome:\n%s", w)
	}
	if n := text(t, byTo[owner]); !strings.Contains(n, "carol@example.test joined Garden crew") || !strings.Contains(n, "Auto-Submitted: auto-generated") {
		t.Errorf("owner notice:\n%s", n)
	}
	if !strings.Contains(members(t, ts), "carol@example.test  each") {
		t.Errorf("carol is not a member:\n%s", members(t, ts))
	}

	// Dave joins by mailing the confirm address, from an HTML-only client.
	if err := ask(t, ts, "dave@example.test", "crew+subscribe@"+testDomain, "", false); err != nil {
		t.Fatal(err)
	}
	d := expect(t, sink, 4, "dave@example.test", "Confirm: join")
	if err := ask(t, ts, "dave@example.test", confirmAddresses(t, d)[0], "<html><body>ok</body></html>", false); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 6)
	if !strings.Contains(members(t, ts), "dave@example.test") {
		t.Errorf("dave is not a member:\n%s", members(t, ts))
	}
}

func TestApprovePolicyJoin(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	ts.mustCLI(t, "list", "set", crew, "-owner", owner) // join policy: approve, the default

	join := func(addr string, first int) (request mailtest.Message) {
		t.Helper()
		if err := ask(t, ts, addr, "crew+subscribe@"+testDomain, "", false); err != nil {
			t.Fatal(err)
		}
		c := expect(t, sink, first, addr, "Then one of the list's owners approves")
		if err := answer(t, ts, c, gmailReply, addr, "Yes, that was me.", false); err != nil {
			t.Fatal(err)
		}
		got := sink.Wait(t, first+2)
		for _, m := range got[first : first+2] {
			switch m.To[0] {
			case addr:
				if !strings.Contains(text(t, m), "waits for the owners") {
					t.Errorf("the requester is not told it waits:\n%s", text(t, m))
				}
			case owner:
				request = m
			}
		}
		if request.Data == nil || !strings.Contains(text(t, request), addr+" asks to join Garden crew") {
			t.Fatalf("no join request reached the owner: %v", got[first:])
		}
		if strings.Contains(members(t, ts), addr) {
			t.Fatalf("%s joined before an owner approved", addr)
		}
		return request
	}

	// The owner approves carol by replying "approve" on top, from Outlook (HTML only).
	req := join("carol@example.test", 1)
	if err := answer(t, ts, req, outlookHTMLReply, owner, "Approve", false); err != nil {
		t.Fatal(err)
	}
	got := sink.Wait(t, 5)
	var welcomed bool
	for _, m := range got[3:5] {
		welcomed = welcomed || m.To[0] == "carol@example.test" && strings.Contains(text(t, m), "Welcome to Garden crew")
	}
	if !welcomed || !strings.Contains(members(t, ts), "carol@example.test") {
		t.Fatalf("carol not in after approval: %s", members(t, ts))
	}

	// An unclear answer changes nothing and says why; "decline" with a reason turns dave down.
	req = join("dave@example.test", 6)
	if err := answer(t, ts, req, thunderbirdReply, owner, "who is this?", false); err != nil {
		t.Fatal(err)
	}
	expect(t, sink, 9, owner, "neither with approve nor with decline")
	if err := answer(t, ts, req, thunderbirdReply, owner, "decline We only take gardeners.", false); err != nil {
		t.Fatal(err)
	}
	expectSome(t, ts, sink, "dave@example.test", "was not accepted", "We only take gardeners.")
	// The owner's decision is acknowledged.
	expectSome(t, ts, sink, owner, "Done: dave@example.test was turned down, with your reason: We only take gardeners.")
	if strings.Contains(members(t, ts), "dave") {
		t.Error("dave joined though declined")
	}
	// A second decision on the same request does nothing more than say who decided, and how.
	if err := ask(t, ts, owner, confirmAddresses(t, req)[0], "", true); err != nil {
		t.Fatal(err)
	}
	expect(t, sink, 12, owner, "This join request was decided already by "+owner+": declined.")
	if strings.Contains(members(t, ts), "dave") {
		t.Error("dave joined by a late approval")
	}
}

func TestInvitePolicyAndOwnerCommands(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	ts.mustCLI(t, "list", "set", crew, "-join", "invite", "-owner", owner)
	request := "crew-request@" + testDomain

	// A stranger cannot join an invite-only list, and is told whom to ask.
	if err := ask(t, ts, "eve@example.test", "crew+subscribe@"+testDomain, "", true); err != nil {
		t.Fatal(err)
	}
	expect(t, sink, 1, "eve@example.test", "by invitation only", "crew+owner@"+testDomain)

	// The owner, from her own domain (SPF passes), invites two people in one mail.
	if err := ask(t, ts, owner, request, "invite erin@example.test, frank@example.test\r\nwho\r\n\r\n-- \r\nOlga\r\n", true); err != nil {
		t.Fatal(err)
	}
	got := sink.Wait(t, 4)
	var invitation mailtest.Message
	for _, m := range got[1:4] {
		switch m.To[0] {
		case "erin@example.test":
			invitation = m
		case owner:
			r := text(t, m)
			for _, w := range []string{"invite erin@example.test: invitation sent.", "invite frank@example.test: invitation sent.", "who: 1 members:", "alice@example.test (each)"} {
				if !strings.Contains(r, w) {
					t.Errorf("results lack %q:\n%s", w, r)
				}
			}
		}
	}
	if invitation.Data == nil || !strings.Contains(text(t, invitation), olgaInvites) {
		t.Fatalf("no invitation for erin: %v", got)
	}
	// Erin accepts by replying.
	if err := answer(t, ts, invitation, thunderbirdReply, "erin@example.test", "Happy to!", false); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 6) // the welcome, the owner's notice
	if !strings.Contains(members(t, ts), "erin@example.test") {
		t.Fatalf("erin not in after accepting:\n%s", members(t, ts))
	}

	// Someone forging the owner's From asks to remove alice: nothing happens but a question to
	// the real owner. Only her confirmation carries the command out.
	if err := ask(t, ts, owner, request, "remove alice@example.test\r\n", false); err != nil {
		t.Fatal(err)
	}
	got = sink.Wait(t, 7) // one answer: the results, asking to confirm
	var question mailtest.Message
	for _, m := range got[6:7] {
		if m.To[0] != owner {
			t.Errorf("a forged owner command mailed %v", m.To)
		}
		if strings.Contains(text(t, m), "Confirm your commands") {
			question = m
		}
	}
	if question.Data == nil || !strings.Contains(members(t, ts), "alice@example.test") {
		t.Fatalf("forged owner command: question %v, members:\n%s", question.Data != nil, members(t, ts))
	}
	if err := answer(t, ts, question, gmailReply, owner, "yes", false); err != nil {
		t.Fatal(err)
	}
	got = sink.Wait(t, 9) // goodbye to alice, the results (with the leave notice) to the owner
	var goodbye bool
	for _, m := range got[7:9] {
		goodbye = goodbye || m.To[0] == "alice@example.test" && strings.Contains(text(t, m), "Subject: An owner removed you from Garden crew")
	}
	if !goodbye || strings.Contains(members(t, ts), "alice@example.test") {
		t.Errorf("after the owner confirmed: goodbye %v, members:\n%s", goodbye, members(t, ts))
	}

	// "who" from someone who is not an owner answers nothing about the members.
	if err := ask(t, ts, "erin@example.test", request, "who\r\n", true); err != nil {
		t.Fatal(err)
	}
	if r := text(t, expect(t, sink, 10, "erin@example.test", "only the owners")); strings.Contains(r, "frank") || strings.Contains(r, "(each)") {
		t.Errorf("who answered a non-owner:\n%s", r)
	}
}

const olgaInvites = owner + " invites you, erin@example.test, to join"

func TestLeaveByRequestAndOneClick(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test", "carol@example.test")
	ts.mustCLI(t, "list", "set", crew, "-owner", owner)

	// Alice leaves by a command to crew-request@ and confirming.
	if err := ask(t, ts, "alice@example.test", "crew-request@"+testDomain, "unsubscribe\r\n", true); err != nil {
		t.Fatal(err)
	}
	got := sink.Wait(t, 1) // the results, with the confirmation in them
	var confirmation mailtest.Message
	for _, m := range got {
		if strings.Contains(text(t, m), "Confirm: leave") {
			confirmation = m
		}
	}
	if confirmation.Data == nil {
		t.Fatalf("no confirmation to leave: %v", got)
	}
	if err := answer(t, ts, confirmation, outlookHTMLReply, "alice@example.test", "Yes, take me off.", false); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 3) // goodbye, owner notice
	if strings.Contains(members(t, ts), "alice") {
		t.Fatal("alice still a member")
	}

	// Bob leaves by his mail client's one-click button (RFC 8058): the POST his copy names.
	if err := send(t, ts.SMTPAddr, "carol@example.test", []string{crew}, post("carol@example.test", "Hi", "hi@example.test", "hello\r\n")); err != nil {
		t.Fatal(err)
	}
	got = sink.Wait(t, 5)
	links := map[string]string{}
	for _, m := range got[3:5] {
		h, err := mail.CreateReader(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		lu := h.Header.Get("List-Unsubscribe")
		if h.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" || !strings.HasPrefix(lu, "<http://"+ts.HTTPAddr+"/u/") {
			t.Fatalf("copy to %v: List-Unsubscribe %q", m.To, lu)
		}
		links[m.To[0]] = strings.Trim(strings.Split(lu, ",")[0], "<>")
	}
	if links["bob@example.test"] == links["carol@example.test"] {
		t.Fatal("two members got the same one-click link")
	}
	// A GET (a link scanner, or bob clicking) changes nothing and offers a button.
	resp, err := http.Get(links["bob@example.test"])
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte("bob@example.test")) || !bytes.Contains(page, []byte(`<form method="post">`)) || bytes.Contains(page, []byte("<script")) {
		t.Fatalf("GET: %d\n%s", resp.StatusCode, page)
	}
	if !strings.Contains(members(t, ts), "bob") {
		t.Fatal("a GET unsubscribed bob")
	}
	form := url.Values{"List-Unsubscribe": {"One-Click"}}
	for range 2 { // a second POST is harmless
		resp, err = http.PostForm(links["bob@example.test"], form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST: %d", resp.StatusCode)
		}
	}
	if m := members(t, ts); strings.Contains(m, "bob") || !strings.Contains(m, "carol") {
		t.Fatalf("after one-click, members:\n%s", m)
	}
	got = sink.Wait(t, 7) // the goodbye, the owner's notice
	if !slices.ContainsFunc(got[5:7], func(m mailtest.Message) bool {
		return m.To[0] == "bob@example.test" && strings.Contains(text(t, m), "You have left Garden crew")
	}) {
		t.Errorf("no goodbye for bob: %v", got[5:7])
	}
	// A tampered link is refused and unsubscribes nobody.
	bad := links["carol@example.test"]
	bad = bad[:len(bad)-3] + "aaa"
	if resp, err = http.PostForm(bad, form); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(members(t, ts), "carol") {
		t.Errorf("tampered link: %d, members:\n%s", resp.StatusCode, members(t, ts))
	}
}

func TestModesByEmail(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")

	// Alice's address is proven (SPF): the change is made and confirmed by a short reply.
	if err := ask(t, ts, "alice@example.test", "crew+daily@"+testDomain, "", true); err != nil {
		t.Fatal(err)
	}
	expect(t, sink, 1, "alice@example.test", "From now on, at alice@example.test, you get a daily digest of Garden crew")
	if !strings.Contains(members(t, ts), "alice@example.test  daily") {
		t.Errorf("alice not in daily mode:\n%s", members(t, ts))
	}
	// Bob's request cannot be proven: he is asked first, at his address on file.
	if err := ask(t, ts, "bob@example.test", "crew+nomail@"+testDomain, "", false); err != nil {
		t.Fatal(err)
	}
	q := expect(t, sink, 2, "bob@example.test", "Confirm: no mail")
	if !strings.Contains(members(t, ts), "bob@example.test    each") {
		t.Errorf("bob's mode changed before he confirmed:\n%s", members(t, ts))
	}
	if err := answer(t, ts, q, gmailReply, "bob@example.test", "yes", false); err != nil {
		t.Fatal(err)
	}
	expect(t, sink, 3, "bob@example.test", "you get no mail from Garden crew")
	// A post now reaches nobody: alice gets digests, bob nothing.
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Quiet", "q@example.test", "x\r\n")); err != nil {
		t.Fatal(err)
	}
	// Back to each by a crew-request@ command; the answer comes as the results.
	if err := ask(t, ts, "alice@example.test", "crew-request@"+testDomain, "each\r\n", true); err != nil {
		t.Fatal(err)
	}
	expect(t, sink, 4, "alice@example.test", "each: done; alice@example.test now gets every post as it comes.")
	if !strings.Contains(members(t, ts), "alice@example.test  each") {
		t.Errorf("alice not back in each mode:\n%s", members(t, ts))
	}
}

func TestModeration(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	ts.mustCLI(t, "list", "set", crew, "-owner", owner, "-moderated", "true", "-nonmembers", "hold")
	if out := ts.mustCLI(t, "list", "show", crew); !strings.Contains(out, "moderated:       true") || !strings.Contains(out, "non-members:     hold") {
		t.Errorf("list show:\n%s", out)
	}
	postFrom := func(from, subject, id string) {
		t.Helper()
		if err := send(t, ts.SMTPAddr, from, []string{crew}, post(from, subject, id, "Body of "+subject+"\r\n")); err != nil {
			t.Fatalf("post %s: %v", subject, err)
		}
	}

	// A verified member's post waits for the moderator, who gets its first lines inline and
	// the post attached; its author is told it waits.
	postFrom("alice@example.test", "Seeds", "seeds@example.test")
	n := expectSome(t, ts, sink, owner, "Post to Garden crew waits for you: Seeds", "Why held: the list is moderated", "It begins:\n\n  | Body of Seeds\n")
	if !bytes.Contains(n.Data, []byte("Content-Type: message/rfc822")) || !bytes.Contains(n.Data, []byte("Body of Seeds")) {
		t.Errorf("the post is not attached:\n%s", n.Data)
	}
	expectSome(t, ts, sink, "alice@example.test", "Subject: Your post to Garden crew waits for a moderator: Seeds", "a moderator reads it first", "You get a mail when a moderator has decided")
	if len(sink.Messages()) != 2 {
		t.Fatalf("%d mails, want the moderator's and the author's", len(sink.Messages()))
	}
	// The moderator replies "approve": the post goes out.
	if err := answer(t, ts, n, thunderbirdReply, owner, "approve", false); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 5)
	for _, to := range []string{"alice@example.test", "bob@example.test"} {
		if m := expectSome(t, ts, sink, to, "Subject: Seeds"); !strings.HasPrefix(m.From, "crew+bounces-") {
			t.Errorf("after approval %v got:\n%s", m.To, m.Data)
		}
	}
	// The moderator's decision is acknowledged; a second one hears who decided, and how.
	expectSome(t, ts, sink, owner, `Done: the post from alice@example.test, "Seeds", went to the list.`)
	if err := answer(t, ts, n, thunderbirdReply, owner, "reject", false); err != nil {
		t.Fatal(err)
	}
	expectSome(t, ts, sink, owner, "This post was decided already by "+owner+": approved.")

	// "reject" with a reason: the author reads it, and gets the post back.
	postFrom("alice@example.test", "Ads", "ads@example.test")
	n = expectSome(t, ts, sink, owner, "waits for you: Ads")
	if err := answer(t, ts, n, gmailReply, owner, "reject Please keep it on topic.", false); err != nil {
		t.Fatal(err)
	}
	back := expectSome(t, ts, sink, "alice@example.test", "Your post to Garden crew was not accepted: Ads", "The moderator's reason: Please keep it on topic.", "Your post is attached below")
	if !bytes.Contains(back.Data, []byte("Content-Type: message/rfc822")) || !bytes.Contains(back.Data, []byte("Body of Ads")) {
		t.Errorf("the rejected post did not come back to its author:\n%s", back.Data)
	}

	// A non-member's post is held too; the operator approves it with the CLI.
	postFrom("gus@example.test", "Hello from outside", "gus@example.test")
	expectSome(t, ts, sink, owner, "gus@example.test is not a member")
	out := ts.mustCLI(t, "held", "ls", crew)
	if !strings.Contains(out, "moderator") || !strings.Contains(out, "Hello from outside") {
		t.Fatalf("held ls:\n%s", out)
	}
	id := strings.Fields(strings.Split(out, "\n")[1])[0]
	ts.mustCLI(t, "held", "approve", crew, id)
	settle(t, ts)

	// A post nobody decides on expires after 14 days, and its (verified) author is told.
	postFrom("bob@example.test", "Forgotten", "forgotten@example.test")
	expectSome(t, ts, sink, owner, "waits for you: Forgotten")
	ts.clock.Advance(15 * 24 * time.Hour)
	if n, err := ts.svc.Sweep(); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
	expectSome(t, ts, sink, "bob@example.test", "Your post to Garden crew was not sent: Forgotten", "none decided in time")
	if out := ts.mustCLI(t, "held", "ls", crew); strings.Contains(out, "Forgotten") {
		t.Errorf("expired post still held:\n%s", out)
	}
	arch := ts.mustCLI(t, "archive", "ls", crew)
	if !strings.Contains(arch, "Seeds") || !strings.Contains(arch, "Hello from outside") || strings.Contains(arch, "Ads") || strings.Contains(arch, "Forgotten") {
		t.Errorf("archive:\n%s", arch)
	}
}

func TestMembershipAbuse(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	ts.mustCLI(t, "list", "set", crew, "-join", "open", "-owner", owner)
	sub := "crew+subscribe@" + testDomain

	// A stranger subscribing the victim five times makes one confirmation, then another only
	// after an hour: the same one again.
	for range 5 {
		if err := ask(t, ts, "victim@example.test", sub, "", false); err != nil {
			t.Fatal(err)
		}
	}
	first := expect(t, sink, 1, "victim@example.test", "Confirm: join")
	settle(t, ts)
	ts.clock.Advance(61 * time.Minute)
	if err := ask(t, ts, "victim@example.test", sub, "", false); err != nil {
		t.Fatal(err)
	}
	second := expect(t, sink, 2, "victim@example.test", "Confirm: join")
	if replyAddress(t, first) != replyAddress(t, second) {
		t.Errorf("asking again made a new confirmation: %s, then %s", replyAddress(t, first), replyAddress(t, second))
	}

	// Automatic mail to the confirm address confirms nothing: a vacation notice, an
	// auto_reply, a bounce from the null sender.
	confirm := replyAddress(t, first)
	for _, extra := range []string{"Auto-Submitted: auto-replied\r\n", "Precedence: auto_reply\r\n", "X-Autoreply: yes\r\n"} {
		msg := []byte("From: victim@example.test\r\nTo: " + confirm + "\r\nSubject: Out of office\r\n" + extra + "Message-ID: <ooo" + fmt.Sprint(time.Now().UnixNano()) + "@example.test>\r\n\r\nI am away.\r\n")
		if err := send(t, ts.SMTPAddr, "victim@example.test", []string{confirm}, msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := send(t, ts.SMTPAddr, "", []string{confirm}, post("mailer-daemon@example.test", "Undelivered", "dsn@example.test", "x\r\n")); err != nil {
		t.Fatal(err)
	}
	// Help to a vacation responder is not answered either.
	if err := send(t, ts.SMTPAddr, "victim@example.test", []string{"crew+help@" + testDomain}, []byte("From: victim@example.test\r\nSubject: away\r\nPrecedence: auto_reply\r\nMessage-ID: <ooo@example.test>\r\n\r\nI am away.\r\n")); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(members(t, ts), "victim") {
		t.Fatal("automatic mail confirmed a subscription")
	}

	// An expired confirmation is refused with a sentence saying so; a tampered one too.
	settle(t, ts)
	ts.clock.Advance(8 * 24 * time.Hour)
	err := ask(t, ts, "victim@example.test", confirm, "yes", false)
	if smtpCode(err) != "550 5.7.1" || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired confirmation: %v", err)
	}
	tampered := strings.Replace(confirm, "crew+confirm-a", "crew+confirm-b", 1)
	if tampered == confirm {
		tampered = strings.Replace(confirm, "crew+confirm-", "crew+confirm-a", 1)
	}
	if err := ask(t, ts, "victim@example.test", tampered, "yes", false); smtpCode(err) != "550 5.7.1" || !strings.Contains(err.Error(), "not a valid confirmation") {
		t.Errorf("tampered confirmation: %v", err)
	}
	// Only the two confirmations were ever sent.
	if msgs := sink.Messages(); len(msgs) != 2 || slices.ContainsFunc(msgs, func(m mailtest.Message) bool { return m.To[0] != "victim@example.test" }) {
		t.Errorf("%d mails sent in all, want the 2 confirmations", len(msgs))
	}
}

// TestCLIMirrorsMembership: member add -welcome mails the welcome, a plain member add is
// silent, and held reject -reason reaches the author of a moderated post.
func TestCLIMirrorsMembership(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	ts.mustCLI(t, "list", "set", crew, "-owner", owner, "-moderated", "true")
	ts.mustCLI(t, "member", "add", crew, "bob@example.test", "-welcome", "-mode", "weekly")
	welcome := expect(t, sink, 1, "bob@example.test", "Subject: Welcome to Garden crew", "You get a weekly digest.", "A daily digest comes every day at 08:00", "crew+password@", "Auto-Submitted: auto-generated", "http://"+ts.HTTPAddr+"/guide")
	// The guide the welcome links to is a web page with this list's own name and addresses.
	link := regexp.MustCompile(`http://\S+/guide\?list=\S+`).FindString(text(t, welcome))
	if link == "" {
		t.Fatalf("no link to the guide for this list:\n%s", text(t, welcome))
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	guide, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"<h2 id=\"joining\">Joining</h2>", "crew+subscribe@lists.example.test", "crew-request@lists.example.test", "Garden crew"} {
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || !bytes.Contains(guide, []byte(want)) || bytes.Contains(guide, []byte("example.org")) || bytes.Contains(guide, []byte("\n## ")) {
			t.Errorf("the member guide the welcome links to lacks %q, or is not this list's web page: %d %s\n%.600s", want, resp.StatusCode, resp.Header.Get("Content-Type"), guide)
		}
	}

	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Raffle", "raffle@example.test", "Buy tickets\r\n")); err != nil {
		t.Fatal(err)
	}
	expectSome(t, ts, sink, owner, "waits for you: Raffle")
	out := ts.mustCLI(t, "held", "ls", crew)
	id := strings.Fields(strings.Split(out, "\n")[1])[0]
	ts.mustCLI(t, "held", "reject", crew, id, "-reason", "No raffles here.")
	expectSome(t, ts, sink, "alice@example.test", "not accepted: Raffle", "The moderator's reason: No raffles here.")
	if msgs := sink.Messages(); len(msgs) != 4 {
		t.Errorf("%d mails, want 4: the welcome, the moderator's, the author's two (a plain member add is silent)", len(msgs))
	}
}

var passwordRE = regexp.MustCompile(`Password:\s+([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})`)

// TestAppPasswordByMail: a member asks crew+password@ and gets a password at the address on
// file; only its hash is stored; asking again within the hour gets no second one; the operator
// can always issue one; a stranger gets none.
func TestAppPasswordByMail(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	if err := ask(t, ts, "alice@example.test", "crew+password@"+testDomain, "", true); err != nil {
		t.Fatal(err)
	}
	m := expect(t, sink, 1, "alice@example.test", "User name:\n  alice@example.test", "port")
	pw := passwordRE.FindStringSubmatch(text(t, m))
	if pw == nil {
		t.Fatalf("no password in:\n%s", text(t, m))
	}
	check := func(want bool, password string) {
		t.Helper()
		err := ts.st.View(func(tx store.Tx) error {
			p, err := tx.AppPasswordOf("alice@example.test")
			if err != nil {
				return err
			}
			if bytes.Contains(p.Hash, []byte(password)) {
				t.Error("the password is stored as it is")
			}
			if ok := bcrypt.CompareHashAndPassword(p.Hash, []byte(password)) == nil; ok != want {
				t.Errorf("password %s matches the stored hash: %v, want %v", password, ok, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	check(true, pw[1])
	if err := ask(t, ts, "alice@example.test", "crew-request@"+testDomain, "password\r\n", true); err != nil {
		t.Fatal(err)
	}
	expect(t, sink, 2, "alice@example.test", "within the hour")
	check(true, pw[1])
	ts.mustCLI(t, "member", "password", crew, "alice@example.test")
	pw2 := passwordRE.FindStringSubmatch(text(t, expect(t, sink, 3, "alice@example.test", "Password:")))
	check(false, pw[1])
	check(true, pw2[1])
	if _, errOut, code := ts.cli(t, "member", "password", crew, "nobody@example.test"); code != 1 || !strings.Contains(errOut, "not a member") {
		t.Errorf("password for a non-member: exit %d %s", code, errOut)
	}
}
