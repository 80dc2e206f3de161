package smtpd

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"crewmail/internal/mailtest"
	"crewmail/lists"
)

// fakeDomain accepts every recipient and keeps the messages it is given.
type fakeDomain struct {
	got    [][]byte
	envs   []lists.Envelope
	accErr error
}

func (d *fakeDomain) Route(rcpt string) (lists.Target, error) {
	return lists.Target{List: rcpt, Kind: lists.KindPost}, nil
}

func (d *fakeDomain) Admit(from string, t lists.Target) error { return nil }

func (d *fakeDomain) Accept(env lists.Envelope, raw []byte) (lists.Result, error) {
	d.envs = append(d.envs, env)
	d.got = append(d.got, raw)
	return lists.Result{}, d.accErr
}

func startSMTP(t *testing.T, cfg Config, d Domain) string {
	t.Helper()
	if cfg.Hostname == "" {
		cfg.Hostname = "mx.example.test"
	}
	cfg.MaxMessageBytes, cfg.MaxRecipients = 1<<20, 10
	cfg.ReadTimeout, cfg.WriteTimeout = time.Minute, time.Minute
	s := New(cfg, d, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(time.Second) })
	return ln.Addr().String()
}

func TestExtensionsAndStartTLS(t *testing.T) {
	d := &fakeDomain{}
	addr := startSMTP(t, Config{TLS: selfSigned(t)}, d)
	c := dial(t, addr)
	for _, ext := range []string{"SIZE", "8BITMIME", "SMTPUTF8", "PIPELINING", "ENHANCEDSTATUSCODES", "STARTTLS"} {
		if ok, _ := c.Extension(ext); !ok {
			t.Errorf("%s not advertised", ext)
		}
	}
	if _, p := c.Extension("SIZE"); p != "1048576" {
		t.Errorf("SIZE %q", p)
	}
	c.Close()

	// After STARTTLS the Received field says ESMTPS.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := smtp.NewClientStartTLS(conn, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if err := tc.Hello("client.example.test"); err != nil {
		t.Fatal(err)
	}
	if err := tc.SendMail("a@example.test", []string{"crew@example.test"}, strings.NewReader("From: a@example.test\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	if len(d.envs) != 1 || !strings.Contains(d.envs[0].Received, "with ESMTPS id") || !strings.Contains(d.envs[0].Received, "for <crew@example.test>") {
		t.Errorf("Received after STARTTLS: %+v", d.envs)
	}
}

func TestNoStartTLSWithoutCertificate(t *testing.T) {
	addr := startSMTP(t, Config{}, &fakeDomain{})
	c := dial(t, addr)
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered without a certificate")
	}
}

// TestInternalErrorIsTemporary: a failure that is not a refusal (the disk, the database) must
// never answer with a permanent code, or the sender would drop the mail.
func TestInternalErrorIsTemporary(t *testing.T) {
	addr := startSMTP(t, Config{}, &fakeDomain{accErr: io.ErrUnexpectedEOF})
	err := dial(t, addr).SendMail("a@example.test", []string{"crew@example.test"}, strings.NewReader("From: a@example.test\r\n\r\nhi\r\n"))
	se, ok := err.(*smtp.SMTPError)
	if !ok || se.Code != 451 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 0}) {
		t.Errorf("internal error answered %v, want 451 4.3.0", err)
	}
	if strings.Contains(err.Error(), "unexpected EOF") {
		t.Errorf("internal cause leaked into the reply: %v", err)
	}
}

func TestBareCRorLF(t *testing.T) {
	for in, want := range map[string]int{
		"":                -1,
		"a\r\nb\r\n":      -1,
		"\n":              0,
		"\r":              0,
		"ab\r":            2,
		"a\r\nb\nc":       4,
		"a\rb\r\n":        1,
		"a\r\r\n":         1,
		"\r\n\r\n\r\n.\n": 7,
	} {
		if got := bareCRorLF([]byte(in)); got != want {
			t.Errorf("bareCRorLF(%q) = %d, want %d", in, got, want)
		}
	}
}

func FuzzBareCRorLF(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		// Reference: with every CRLF pair gone, no CR or LF may remain.
		clean := !bytes.ContainsAny(bytes.ReplaceAll(b, []byte("\r\n"), nil), "\r\n")
		if got := bareCRorLF(b); (got < 0) != clean {
			t.Errorf("bareCRorLF(%q) = %d, reference says clean = %v", b, got, clean)
		}
	})
}

func FuzzReceived(f *testing.F) {
	f.Fuzz(func(t *testing.T, helo string) {
		s := sanitize(helo)
		if strings.ContainsAny(s, " \t\r\n();\\") {
			t.Errorf("sanitize(%q) = %q", helo, s)
		}
	})
}

func selfSigned(t *testing.T) *tls.Config {
	cert, _ := mailtest.NewCert(t, "mx.example.test")
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

// dial connects to the server at addr and greets it.
func dial(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.example.test"); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEHLOReplyNamesServer: RFC 5321 §4.1.1.1, the EHLO (and HELO) reply starts with this
// server's name.
func TestEHLOReplyNamesServer(t *testing.T) {
	addr := startSMTP(t, Config{}, &fakeDomain{})
	c := dialRaw(t, addr)
	c.reply()
	io.WriteString(c.conn, "EHLO client.example.test\r\n")
	if r, _ := c.r.ReadString('\n'); r != "250-mx.example.test Hello client.example.test\r\n" {
		t.Errorf("EHLO reply starts %q, want 250-mx.example.test Hello client.example.test", r)
	}
	c.reply()
	if r := c.cmd("HELO client.example.test"); !strings.HasPrefix(r, "250 2.0.0 mx.example.test Hello client.example.test") {
		t.Errorf("HELO reply %q", r)
	}
}

// TestReceivedIPv6: RFC 5321 §4.1.3, an IPv6 client's address in the Received field is an
// address literal tagged IPv6:.
func TestReceivedIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	d := &fakeDomain{}
	s := New(Config{Hostname: "mx.example.test", MaxMessageBytes: 1 << 20, MaxRecipients: 10, ReadTimeout: time.Minute, WriteTimeout: time.Minute}, d, slog.New(slog.DiscardHandler))
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(time.Second) })
	c := dial(t, ln.Addr().String())
	if err := c.SendMail("a@example.test", []string{"crew@example.test"}, strings.NewReader("From: a@example.test\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	if len(d.envs) != 1 || !strings.Contains(d.envs[0].Received, " ([IPv6:::1])\r\n\tby mx.example.test ") {
		t.Errorf("Received fields: %+v", d.envs)
	}
}

// senderDomain admits only some senders to the address "private@example.test", as the domain
// does for a private reply address: others are refused with what it says.
type senderDomain struct {
	fakeDomain
	refusals map[string]*lists.Refusal // sender → refusal
}

func (d *senderDomain) Admit(from string, t lists.Target) error {
	if r := d.refusals[from]; r != nil && t.List == "private@example.test" {
		return r
	}
	return nil
}

// TestRcptAsksTheDomainAboutTheSender: at RCPT the domain judges the sender for the address
// (Domain.Admit); its refusal is the reply, code and enhanced code as it said, and the other
// recipients of the transaction still go through.
func TestRcptAsksTheDomainAboutTheSender(t *testing.T) {
	d := &senderDomain{refusals: map[string]*lists.Refusal{
		"stranger@example.test": {Code: 550, Enhanced: [3]int{5, 7, 1}, Message: "members only"},
		"busy@example.test":     {Code: 450, Enhanced: [3]int{4, 7, 1}, Message: "too many this hour"},
	}}
	addr := startSMTP(t, Config{}, d)
	for from, want := range map[string]string{"stranger@example.test": "550 5.7.1", "busy@example.test": "450 4.7.1"} {
		c := dial(t, addr)
		if err := c.Mail(from, nil); err != nil {
			t.Fatal(err)
		}
		err := c.Rcpt("private@example.test", nil)
		var se *smtp.SMTPError
		if !errors.As(err, &se) || fmt.Sprintf("%d %d.%d.%d", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2]) != want {
			t.Errorf("RCPT from %s: %v, want %s", from, err, want)
		}
		if err := c.Rcpt("crew@example.test", nil); err != nil {
			t.Errorf("RCPT of another address from %s after a refusal: %v", from, err)
		}
		c.Close()
	}
	if err := dial(t, addr).SendMail("member@example.test", []string{"private@example.test"}, strings.NewReader("From: member@example.test\r\n\r\nhi\r\n")); err != nil {
		t.Errorf("a sender the domain admits: %v", err)
	}
}
