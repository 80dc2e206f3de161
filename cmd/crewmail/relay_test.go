package main

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"crewmail/internal/mailtest"
)

// sendFrom is send from a chosen local address (any 127.x.y.z reaches the loopback listener).
func sendFrom(t *testing.T, local, addr, from string, to []string, msg []byte) error {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("client.example.test"); err != nil {
		t.Fatal(err)
	}
	return c.SendMail(from, to, bytes.NewReader(msg))
}

// relayed is a post of carol@far.test as the front MTA at 127.0.0.1 passes it on: the Received
// field it added on top names carol's server, 192.0.2.1 (far.test's SPF allows it), and its
// checker's Authentication-Results come first; someone else's and one in our name ride along.
func relayed(msgid string) []byte {
	return append([]byte("Received: from mail.far.test (mail.far.test [192.0.2.1])\r\n"+
		"\tby mx.example.test (Postfix) with ESMTP id 4Xyz1\r\n"+
		"\tfor <crew@lists.example.test>; Fri, 4 Dec 2026 10:00:00 +0000 (UTC)\r\n"+
		"Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=far.test\r\n"+
		"Authentication-Results: other.test; dkim=pass header.d=far.test\r\n"+
		"Authentication-Results: lists.example.test; dmarc=pass\r\n"+
		"Received: from carol ([10.0.0.5]) by mail.far.test; Fri, 4 Dec 2026 09:59:00 +0000\r\n"),
		post("carol@far.test", "From afar", msgid, "an SPF-only member\r\n")...)
}

// TestTrustedRelay: behind a trusted front MTA, an SPF-only member's post is checked for the
// client the relay recorded and goes out at once on a verified list; the relay's checker's
// Authentication-Results is kept and recorded as evidence, every other one removed. The same
// post from an address that is not a trusted relay is held, and the forged trusted
// Authentication-Results is removed from it.
func TestTrustedRelay(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	cfg := testConfig(t, t.TempDir(), sink.Addr, `trusted_relays = ["127.0.0.1/32", "2001:db8::/64"]
trusted_authserv_ids = ["mx.example.test"]`)
	d, _ := dnsOf.Load(cfg)
	d.(*mailtest.DNS).Add(t, `far.test. 300 IN TXT "v=spf1 ip4:192.0.2.1 -all"`)
	ts := startTestServer(t, cfg)
	ts.mustCLI(t, "list", "create", crew, "-name", "Garden crew")
	ts.mustCLI(t, "member", "add", crew, "carol@far.test", "alice@example.test")
	ts.mustCLI(t, "list", "set", crew, "-post", "verified")

	if err := send(t, ts.SMTPAddr, "carol@far.test", []string{crew}, relayed("relayed@far.test")); err != nil {
		t.Fatal(err)
	}
	for _, m := range sink.Wait(t, 2) {
		s := string(m.Data)
		unfolded := strings.NewReplacer("\r\n\t", " ", "\r\n ", " ").Replace(s)
		if !strings.Contains(s, "Authentication-Results: lists.example.test;") ||
			!strings.Contains(unfolded, "spf=pass (client 192.0.2.1 as recorded by trusted relay 127.0.0.1) smtp.mailfrom=far.test policy.iprev=192.0.2.1;") {
			t.Errorf("copy to %v lacks our spf=pass for the relay's client:\n%s", m.To, s)
		}
		if !strings.Contains(s, "Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=far.test\r\n") {
			t.Errorf("copy to %v lost the trusted relay's Authentication-Results:\n%s", m.To, s)
		}
		if strings.Contains(s, "other.test") || strings.Contains(s, "lists.example.test; dmarc=pass\r\n") {
			t.Errorf("copy to %v keeps an untrusted Authentication-Results:\n%s", m.To, s)
		}
	}
	arch := ts.mustCLI(t, "archive", "ls", crew, "-json")
	if !strings.Contains(arch, `"verified":"spf","evidence":["mx.example.test; spf=pass smtp.mailfrom=far.test"]`) {
		t.Errorf("archive ls -json does not show the evidence:\n%s", arch)
	}

	// Straight from an address that is not a trusted relay, with the same forged chain: SPF
	// is checked for that address (127.0.0.2), which far.test does not allow: held.
	if err := sendFrom(t, "127.0.0.2", ts.SMTPAddr, "carol@far.test", []string{crew}, relayed("forged@far.test")); err != nil {
		t.Fatalf("post from an untrusted address: %v (it is held, not refused)", err)
	}
	got := sink.Wait(t, 3)
	ask := got[2]
	if len(ask.To) != 1 || ask.To[0] != "carol@far.test" || !bytes.Contains(ask.Data, []byte("Did you send this")) {
		t.Fatalf("after the untrusted post the sink got a mail to %v:\n%s", ask.To, ask.Data)
	}
	var confirmAddr string
	for _, line := range strings.Split(string(ask.Data), "\r\n") {
		if v, ok := strings.CutPrefix(line, "Reply-To: "); ok {
			confirmAddr = strings.Trim(v, "<>")
		}
	}
	if err := send(t, ts.SMTPAddr, "carol@far.test", []string{confirmAddr}, relayed("confirm@far.test")); err != nil {
		t.Fatal(err)
	}
	for _, m := range sink.Wait(t, 5)[3:] {
		if !bytes.Contains(m.Data, []byte("Message-ID: <forged@far.test>")) {
			t.Fatalf("after the confirmation %v got:\n%s", m.To, m.Data)
		}
		if bytes.Contains(m.Data, []byte("mx.example.test; spf=pass")) || bytes.Contains(m.Data, []byte("trusted relay")) {
			t.Errorf("the untrusted client's claims survived:\n%s", m.Data)
		}
	}
}

// TestRecipients: "crewmail recipients DOMAIN" prints postmap input naming what the lists of
// the domain accept; postmaster@ and abuse@ appear once someone reads them.
func TestRecipients(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	ts.mustCLI(t, "list", "create", "news@"+testDomain)
	if out := ts.mustCLI(t, "recipients", testDomain); out != "crew-request@lists.example.test OK\ncrew@lists.example.test OK\nnews-request@lists.example.test OK\nnews@lists.example.test OK\n" {
		t.Errorf("recipients without owners:\n%s", out)
	}
	ts.mustCLI(t, "list", "set", crew, "-owner", "olga@example.test")
	if out := ts.mustCLI(t, "recipients", "LISTS.example.test"); !strings.HasPrefix(out, "abuse@lists.example.test OK\n") || !strings.Contains(out, "\npostmaster@lists.example.test OK\n") {
		t.Errorf("recipients with an owner:\n%s", out)
	}
	if _, _, code := ts.cli(t, "recipients", "example.test"); code != 1 {
		t.Errorf("recipients of a domain without lists: exit %d, want 1", code)
	}
	if _, _, code := ts.cli(t, "recipients"); code != 2 {
		t.Errorf("recipients without a domain: exit %d, want 2", code)
	}
}

// TestRelayEvidenceSurvivesAHold: a relayed post that waits for a moderator keeps the trusted
// relay's Authentication-Results as evidence once it is approved and archived.
func TestRelayEvidenceSurvivesAHold(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	cfg := testConfig(t, t.TempDir(), sink.Addr, `trusted_relays = ["127.0.0.1/32"]
trusted_authserv_ids = ["mx.example.test"]`)
	d, _ := dnsOf.Load(cfg)
	d.(*mailtest.DNS).Add(t, `far.test. 300 IN TXT "v=spf1 ip4:192.0.2.1 -all"`)
	ts := startTestServer(t, cfg)
	ts.mustCLI(t, "list", "create", crew, "-name", "Garden crew", "-owner", "olga@example.test", "-moderated", "true")
	ts.mustCLI(t, "member", "add", crew, "carol@far.test", "alice@example.test")
	if err := send(t, ts.SMTPAddr, "carol@far.test", []string{crew}, relayed("held@far.test")); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 1) // the moderator's notice
	if out := ts.mustCLI(t, "held", "approve", crew, "1"); !strings.Contains(out, "posted held post 1") {
		t.Fatalf("approve: %s", out)
	}
	arch := ts.mustCLI(t, "archive", "ls", crew, "-json")
	if !strings.Contains(arch, `"evidence":["mx.example.test; spf=pass smtp.mailfrom=far.test"]`) {
		t.Errorf("archive ls -json after the hold does not show the evidence:\n%s", arch)
	}
}
