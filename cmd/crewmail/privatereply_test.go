package main

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dkim"

	"crewmail/internal/mailtest"
)

var privateLinkRE = regexp.MustCompile(`only: (crew\+p-([a-z2-7]+)@` + regexp.QuoteMeta(testDomain) + `)`)

// listDKIM makes the list domain's Ed25519 key with "crewmail dkim keygen" and returns a
// LookupTXT that answers with the record it printed, as the test's DNS would.
func listDKIM(t *testing.T, ts *testServer) func(string) ([]string, error) {
	t.Helper()
	out := ts.mustCLI(t, "dkim", "keygen", testDomain, "-selector", "s2026", "-algo", "ed25519")
	line := out[strings.Index(out, "s2026._domainkey."):]
	name, value, ok := strings.Cut(strings.TrimSpace(line), ". IN TXT ")
	if !ok {
		t.Fatalf("keygen printed:\n%s", out)
	}
	value = strings.Trim(value, `"`)
	return func(q string) ([]string, error) {
		if q == name {
			return []string{value}, nil
		}
		return nil, errors.New("no such record")
	}
}

// field reads one field of a delivered message, "" when it has none.
func field(t *testing.T, m mailtest.Message, name string) string {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	return r.Header.Get(name)
}

// TestPrivateReplyRelay: a digest carries "Reply to Alice only" beside each Reply; Bob's answer
// sent there reaches Alice alone (no other member, not the archive, not IMAP), From the list
// on Bob's behalf, Reply-To Bob, threaded under her post, signed by the list's domain. A
// stranger, a token replayed on another list, a forged token, a From that is not a member and
// an unproven member on a list that wants proof are refused; past 20 an hour a replier is asked
// to wait (450 4.7.1); after 30 days the address has expired.
func TestPrivateReplyRelay(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test", "carol@example.test", "erin@nospf.test")
	lookup := listDKIM(t, ts)
	for _, m := range []string{"bob@example.test", "erin@nospf.test"} {
		ts.mustCLI(t, "member", "mode", crew, m, "daily")
	}
	seeds := "seeds@" + testDomain
	ts.mustCLI(t, "list", "create", seeds, "-name", "Seed swap")
	ts.mustCLI(t, "member", "add", seeds, "alice@example.test", "bob@example.test", "-mode", "nomail")

	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("Alice <alice@example.test>", "Seeds", "seeds@example.test", "Who wants my spare beans?\r\n")); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 2) // alice's and carol's copies
	settle(t, ts)
	ts.mustCLI(t, "digest", "send", "-now")
	settle(t, ts)
	var digest mailtest.Message
	for _, m := range sink.Messages() {
		if m.To[0] == "bob@example.test" {
			digest = m
		}
	}
	if digest.Data == nil {
		t.Fatal("bob got no digest")
	}
	dtext, page := digestParts(t, digest)
	m := privateLinkRE.FindStringSubmatch(dtext)
	if m == nil || !strings.Contains(dtext, "Reply to Alice only: "+m[1]) {
		t.Fatalf("no Reply to Alice only link in the digest:\n%s", dtext)
	}
	relay, tok := m[1], m[2]
	if page = html.UnescapeString(page); !strings.Contains(page, `href="mailto:`+relay) || !strings.Contains(page, "Reply to Alice only</a>") {
		t.Errorf("the HTML part lacks the link:\n%s", page)
	}
	before := len(sink.Messages())

	// Bob answers Alice alone, from a client that sets no In-Reply-To.
	answer := []byte("From: Bob <bob@example.test>\r\nTo: " + relay + "\r\nSubject: Re: Seeds\r\nDate: Wed, 25 Nov 2026 11:00:00 +0000\r\nMessage-ID: <bob-private@example.test>\r\n\r\nI'd love some beans; just between us.\r\n")
	if err := send(t, ts.SMTPAddr, "bob@example.test", []string{relay}, answer); err != nil {
		t.Fatalf("the relay refused bob: %v", err)
	}
	got := expect(t, sink, before+1, "alice@example.test", "I'd love some beans; just between us.")
	for name, want := range map[string]string{
		"From": `"Bob via Garden crew" <crew@` + testDomain + `>`, "Reply-To": `"Bob" <bob@example.test>`,
		"To": "<alice@example.test>", "In-Reply-To": "<seeds@example.test>", "X-Loop": crew, "Subject": "Re: Seeds",
	} {
		if v := field(t, got, name); v != want {
			t.Errorf("%s: %q, want %q", name, v, want)
		}
	}
	if !strings.HasPrefix(got.From, "crew+bounces-") {
		t.Errorf("envelope sender %q, want the list's VERP address", got.From)
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(got.Data), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != testDomain {
		t.Errorf("the relayed mail's signature: %v %+v", err, vs)
	}
	settle(t, ts)
	if n := len(sink.Messages()); n != before+1 {
		t.Errorf("the private reply went out %d times, want once (to alice)", n-before)
	}
	if arch := ts.mustCLI(t, "archive", "ls", crew); strings.Contains(arch, "Re: Seeds") || strings.Count(arch, "\n") != 2 {
		t.Errorf("the private reply was archived:\n%s", arch)
	}

	// Refused at RCPT: a stranger; the token on another list; a forged token.
	flip := map[bool]string{true: "b", false: "a"}[tok[0] == 'a']
	forged := "crew+p-" + flip + tok[1:] + "@" + testDomain
	for _, tc := range []struct{ from, to, want string }{
		{"stranger@example.test", relay, "550 5.7.1"},
		{"bob@example.test", "seeds+p-" + tok + "@" + testDomain, "550 5.1.1"},
		{"bob@example.test", forged, "550 5.1.1"},
		{"", relay, "550 5.7.1"},
	} {
		msg := bytes.Replace(answer, []byte("Bob <bob@example.test>"), []byte(tc.from), 1)
		if err := send(t, ts.SMTPAddr, tc.from, []string{tc.to}, msg); smtpCode(err) != tc.want {
			t.Errorf("from <%s> to %s: %s, want %s", tc.from, tc.to, smtpCode(err), tc.want)
		}
	}
	if reply := rawRCPT(t, ts.SMTPAddr, "stranger@example.test", relay); !strings.HasPrefix(reply, "550 5.7.1") {
		t.Errorf("a stranger at RCPT: %s", reply)
	}
	// At DATA: a From that is not a member behind a member's envelope; an unproven member
	// (nospf.test publishes no SPF) on a list that wants posts proven.
	impostor := bytes.Replace(answer, []byte("Bob <bob@example.test>"), []byte("mallory@example.test"), 1)
	if err := send(t, ts.SMTPAddr, "bob@example.test", []string{relay}, impostor); smtpCode(err) != "550 5.7.1" {
		t.Errorf("a From that is not a member: %s", smtpCode(err))
	}
	unproven := bytes.Replace(answer, []byte("Bob <bob@example.test>"), []byte("erin@nospf.test"), 1)
	if err := send(t, ts.SMTPAddr, "erin@nospf.test", []string{relay}, unproven); smtpCode(err) != "550 5.7.1" || !strings.Contains(err.Error(), "proven") {
		t.Errorf("an unproven member: %v", err)
	}
	settle(t, ts)
	if n := len(sink.Messages()); n != before+1 {
		t.Fatalf("a refused private reply went out (%d mails since)", n-before)
	}

	// 20 an hour: bob has sent one; 19 more go, the next is asked to wait.
	for i := range 19 {
		msg := bytes.Replace(answer, []byte("bob-private@"), fmt.Appendf(nil, "bob-private-%d@", i), 1)
		if err := send(t, ts.SMTPAddr, "bob@example.test", []string{relay}, msg); err != nil {
			t.Fatalf("private reply %d: %v", i+2, err)
		}
	}
	err = send(t, ts.SMTPAddr, "bob@example.test", []string{relay}, answer)
	if smtpCode(err) != "450 4.7.1" {
		t.Errorf("the 21st private reply within the hour: %s", smtpCode(err))
	}
	settle(t, ts)
	if n := len(sink.Messages()); n != before+20 {
		t.Errorf("%d private replies went out, want 20", n-before)
	}

	// Not in IMAP: alice's mailbox holds her post alone.
	ts.mustCLI(t, "member", "password", crew, "alice@example.test")
	pw := passwordRE.FindStringSubmatch(text(t, expectSome(t, ts, sink, "alice@example.test", "Password:")))[1]
	c, err := imapclient.DialInsecure(ts.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@example.test", pw).Wait(); err != nil {
		t.Fatal(err)
	}
	if sel, err := c.Select("crew", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil || sel.NumMessages != 1 {
		t.Errorf("IMAP: %+v %v, want her post alone", sel, err)
	}
	c.Logout().Wait()

	// An hour on, bob may again; 30 days on, the address has expired.
	ts.clock.Advance(time.Hour + time.Minute)
	if reply := rawRCPT(t, ts.SMTPAddr, "bob@example.test", relay); !strings.HasPrefix(reply, "250") {
		t.Errorf("an hour later: %s", reply)
	}
	ts.clock.Advance(30 * 24 * time.Hour)
	if reply := rawRCPT(t, ts.SMTPAddr, "bob@example.test", relay); !strings.HasPrefix(reply, "550 5.7.1") || !strings.Contains(reply, "expired") {
		t.Errorf("an expired private reply address: %s", reply)
	}
}

// rawRCPT opens a session, gives MAIL FROM and RCPT TO, and returns the reply to RCPT.
func rawRCPT(t *testing.T, addr, from, to string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reply := replies(conn)
	reply()
	for _, cmd := range []string{"EHLO client.example.test", "MAIL FROM:<" + from + ">"} {
		io.WriteString(conn, cmd+"\r\n")
		reply()
	}
	io.WriteString(conn, "RCPT TO:<"+to+">\r\n")
	return reply()
}

// TestHideAddresses: on a list with -hide-addresses, a member's list copy and a digest name
// the authors, never their addresses; the copy's Reply-To is the post's private reply address,
// through which an answer reaches the author alone.
func TestHideAddresses(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "carol@example.test", "dan@example.test", "bob@example.test")
	ts.mustCLI(t, "member", "mode", crew, "bob@example.test", "daily")
	ts.mustCLI(t, "member", "set", crew, "alice@example.test", "-no-own-posts")
	ts.mustCLI(t, "member", "set", crew, "carol@example.test", "-no-own-posts")
	ts.mustCLI(t, "list", "set", crew, "-hide-addresses", "true")
	if out := ts.mustCLI(t, "list", "show", crew); !strings.Contains(out, "hidden") {
		t.Errorf("list show:\n%s", out)
	}
	// Alice's mail server (Exim) names her in its Received field; she sets a Reply-To of hers.
	alice := []byte("Received: from alice by mx.example.test with local (Exim 4.96)\r\n\t(envelope-from <alice@example.test>)\r\n\tid 1a2b3c; Wed, 25 Nov 2026 10:00:00 +0000\r\n" +
		"From: Alice Liddell <Alice@example.test>\r\nReply-To: alice@example.test\r\nSender: alice@example.test\r\n" +
		"To: crew@" + testDomain + "\r\nSubject: Beans\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <beans@example.test>\r\n\r\nSpare beans by the shed.\r\n")
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, alice); err != nil {
		t.Fatal(err)
	}
	if err := send(t, ts.SMTPAddr, "carol@example.test", []string{crew}, post("carol@example.test", "Peas", "peas@example.test", "And peas.\r\n")); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	var copyToDan mailtest.Message
	for _, m := range sink.Messages() {
		if m.To[0] == "dan@example.test" && strings.Contains(string(m.Data), "Spare beans") {
			copyToDan = m
		}
		if low := strings.ToLower(string(m.Data)); strings.Contains(low, "alice@example.test") && m.To[0] != "alice@example.test" ||
			strings.Contains(low, "carol@example.test") && m.To[0] != "carol@example.test" {
			t.Errorf("the copy to %s shows an author's address:\n%s", m.To[0], m.Data)
		}
	}
	if copyToDan.Data == nil {
		t.Fatal("dan got no copy of alice's post")
	}
	if from := field(t, copyToDan, "From"); from != `"Alice Liddell via Garden crew" <crew@`+testDomain+`>` {
		t.Errorf("From of the copy: %q", from)
	}
	replyTo := field(t, copyToDan, "Reply-To")
	if !regexp.MustCompile(`^<crew\+p-[a-z2-7]+@` + regexp.QuoteMeta(testDomain) + `>$`).MatchString(replyTo) {
		t.Fatalf("Reply-To of the copy: %q, want the private reply address", replyTo)
	}

	ts.mustCLI(t, "digest", "send", "-now")
	settle(t, ts)
	var digest mailtest.Message
	for _, m := range sink.Messages() {
		if m.To[0] == "bob@example.test" {
			digest = m
		}
	}
	dtext, page := digestParts(t, digest)
	for _, part := range []string{string(digest.Data), dtext, html.UnescapeString(page)} {
		if low := strings.ToLower(part); strings.Contains(low, "alice@example.test") || strings.Contains(low, "carol@example.test") {
			t.Errorf("the digest shows an author's address:\n%s", part)
		}
	}
	for _, want := range []string{"Alice Liddell ✓ — ", "carol ✓ — ", "Reply to Alice Liddell only: crew+p-", "Reply to carol only: crew+p-"} {
		if !strings.Contains(dtext, want) {
			t.Errorf("the digest lacks %q:\n%s", want, dtext)
		}
	}

	// Dan answers the copy: his Reply goes to the private reply address, and so to Alice.
	before := len(sink.Messages())
	relay := strings.Trim(replyTo, "<>")
	answer := []byte("From: dan@example.test\r\nTo: " + relay + "\r\nSubject: Re: Beans\r\nIn-Reply-To: <beans@example.test>\r\nMessage-ID: <dan@example.test>\r\n\r\nMe please.\r\n")
	if err := send(t, ts.SMTPAddr, "dan@example.test", []string{relay}, answer); err != nil {
		t.Fatal(err)
	}
	expect(t, sink, before+1, "alice@example.test", "Me please.", `From: "dan via Garden crew"`)
	settle(t, ts)
	if n := len(sink.Messages()); n != before+1 {
		t.Errorf("dan's answer went out %d times", n-before)
	}
}
