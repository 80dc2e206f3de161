package main

import (
	"io"
	"net"
	"strings"
	"testing"

	"crewmail/internal/mailtest"
)

// rcptReply speaks SMTP by hand up to one RCPT TO and returns the server's reply to it, so that
// addresses a client library would refuse to send can be tried.
func rcptReply(t *testing.T, addr, rcpt string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reply := replies(conn)
	reply()
	for _, cmd := range []string{"EHLO client.example.test", "MAIL FROM:<alice@example.test> SMTPUTF8"} {
		io.WriteString(conn, cmd+"\r\n")
		reply()
	}
	io.WriteString(conn, "RCPT TO:"+rcpt+"\r\n")
	return reply()
}

// TestNoOpenRelay tries the relay tricks spammers use: none of them gets mail through to a
// domain crewmail does not serve.
func TestNoOpenRelay(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	for _, tc := range []struct{ rcpt, why string }{
		{"<someone@gmail.example>", "a foreign domain"},
		{"<someone%gmail.example@" + testDomain + ">", "percent hack"},
		{"<@" + testDomain + ":someone@gmail.example>", "source route (RFC 5321 §4.1.1.3)"},
		{"<\"someone@gmail.example\"@" + testDomain + ">", "quoted local part holding an address"},
		{"<someone@[127.0.0.1]>", "address literal"},
		{"<someone@gmail.example.>", "trailing dot"},
		{"<someone@gmail.example@" + testDomain + ">", "two at signs"},
		{"<someone!gmail.example@" + testDomain + ">", "bang path"},
		{"<crew@l\u0456sts.example.test>", "IDN look-alike of the list domain (Cyrillic i)"},
		{"<crew@xn--lsts-q5d.example.test>", "the look-alike in punycode"},
		{"<postmaster@gmail.example>", "postmaster of a foreign domain"},
		{"<crew@" + testDomain + " >", "trailing space"},
	} {
		reply := rcptReply(t, ts.SMTPAddr, tc.rcpt)
		if !strings.HasPrefix(reply, "5") {
			t.Errorf("%s: RCPT TO:%s got %q, want a permanent refusal", tc.why, tc.rcpt, reply)
		}
	}
	// Mixed case is the same list, not a relay; a source route is ignored as RFC 5321 Appendix C
	// asks, so it reaches the list it ends in, never the host it names.
	for _, rcpt := range []string{"<CREW@Lists.Example.Test>", "<@gmail.example:crew@" + testDomain + ">"} {
		if reply := rcptReply(t, ts.SMTPAddr, rcpt); !strings.HasPrefix(reply, "250") || !strings.Contains(strings.ToLower(reply), "crew@"+testDomain) {
			t.Errorf("RCPT TO:%s: %q, want the list itself", rcpt, reply)
		}
	}
	settle(t, ts)
	if n := len(sink.Messages()); n != 0 {
		t.Errorf("%d messages went out", n)
	}
}

// TestNoHeaderInjection: a subject or name that decodes to a line break cannot add a field to
// the notices and digests crewmail writes with it.
func TestNoHeaderInjection(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	ts.mustCLI(t, "list", "set", crew, "-owner", owner, "-moderated", "true")
	ts.mustCLI(t, "member", "mode", crew, "bob@example.test", "daily")
	msg := []byte("From: Alice <alice@example.test>\r\nTo: " + crew +
		"\r\nSubject: =?utf-8?q?Hi=0D=0ABcc:_victim@example.test?=\r\nMessage-ID: <inj@example.test>\r\n\r\nbody\r\n")
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, msg); err != nil {
		t.Fatal(err)
	}
	notice := expectSome(t, ts, sink, owner, "waits for you")
	ts.mustCLI(t, "held", "approve", crew, "1")
	sink.Wait(t, 3)
	settle(t, ts)
	ts.mustCLI(t, "digest", "send", "-now")
	digest := expect(t, sink, 4, "bob@example.test", "Daily digest")
	for _, m := range []mailtest.Message{notice, digest} {
		head, _, _ := strings.Cut(string(m.Data), "\r\n\r\n")
		for _, line := range strings.Split(head, "\r\n") {
			if strings.HasPrefix(strings.ToLower(line), "bcc:") {
				t.Errorf("a field was injected into the mail to %v:\n%s", m.To, head)
			}
		}
	}
}
