package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"crewmail/config"
	"crewmail/internal/mailtest"
	"crewmail/store"
)

const testDomain = "lists.example.test"

// testServer is crewmail running inside the test on loopback ephemeral ports.
type testServer struct {
	*server
	cfgPath string
	clock   *fakeClock
	stop    func()
}

// fakeClock is time.Now plus an offset the test can move forward.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// testConfig is a configuration for a server in dir that relays through smarthost; smtpKeys
// are more lines for its [smtp] table.
func testConfig(t *testing.T, dir, smarthost string, smtpKeys string) string {
	t.Helper()
	dns := testDNS(t)
	text := fmt.Sprintf(`hostname = %q
data_dir = %q
[log]
level = "info"
[smtp]
listen = "127.0.0.1:0"
%s
[http]
listen = "127.0.0.1:0"
[imap]
listen = "127.0.0.1:0"
[delivery]
mode = "smarthost"
smarthost = %q
smarthost_tls = "none"
[dns]
resolver = %q
`, testDomain, filepath.Join(dir, "data"), smtpKeys, smarthost, dns.Addr)
	path := filepath.Join(dir, "crewmail.toml")
	dnsOf.Store(path, dns)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testDNS is the world's DNS as the tests see it: example.test, where most members live, lets
// 127.0.0.1 send its mail (SPF) and publishes DMARC p=none; strict.test does the same with
// p=reject; every other name does not exist.
func testDNS(t *testing.T) *mailtest.DNS {
	pub := testDKIMKey.Public().(ed25519.PublicKey)
	return mailtest.NewDNS(t,
		`sel1._domainkey.example.test. 300 IN TXT "v=DKIM1; k=ed25519; p=`+base64.StdEncoding.EncodeToString(pub)+`"`,
		`example.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"`,
		`_dmarc.example.test. 300 IN TXT "v=DMARC1; p=none"`,
		`strict.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"`,
		`_dmarc.strict.test. 300 IN TXT "v=DMARC1; p=reject"`,
		"lists.example.test. 300 IN MX 10 lists.example.test.",
		"lists.example.test. 300 IN A 127.0.0.1",
	)
}

// testDKIMKey signs for example.test as sel1 (published by testDNS).
var testDKIMKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

// signAsExampleTest DKIM-signs msg for example.test, as a member's own mail server would.
func signAsExampleTest(t *testing.T, msg []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	err := dkim.Sign(&out, bytes.NewReader(msg), &dkim.SignOptions{Domain: "example.test", Selector: "sel1", Signer: testDKIMKey,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: []string{"From", "To", "Cc", "Subject", "Date", "Message-ID"}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// dnsOf finds the DNS server of a test configuration.
var dnsOf sync.Map // config path → *mailtest.DNS

// startTestServer runs crewmail with the config at cfgPath until the test ends.
func startTestServer(t *testing.T, cfgPath string) *testServer {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := startServer(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{}
	srv.queue.Now = clock.Now
	srv.svc.Now = clock.Now
	srv.digests.Now = clock.Now
	srv.queue.Jitter = func() float64 { return 0.5 }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.run(ctx) }()
	ts := &testServer{server: srv, cfgPath: cfgPath, clock: clock}
	var stopped bool
	ts.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server stopped with an error: %v", err)
		}
	}
	t.Cleanup(ts.stop)
	return ts
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// cli runs a crewmail command line with the test server's config and returns its output.
func (ts *testServer) cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCLI(t, ts.cfgPath, args...)
}

func runCLI(t *testing.T, cfgPath string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"-config", cfgPath}, args...), &out, &errOut)
	return out.String(), errOut.String(), code
}

// mustCLI runs a command that must succeed.
func (ts *testServer) mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := ts.cli(t, args...)
	if code != 0 {
		t.Fatalf("crewmail %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// send posts msg over SMTP with go-smtp's client and returns the server's final reply.
func send(t *testing.T, addr, from string, to []string, msg []byte) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example.test"); err != nil {
		t.Fatal(err)
	}
	return c.SendMail(from, to, bytes.NewReader(msg))
}

// smtpCode is the reply code and enhanced code of err, "250 2.0.0" for nil.
func smtpCode(err error) string {
	if err == nil {
		return "250 2.0.0"
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return fmt.Sprintf("%d %d.%d.%d", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	}
	return "error: " + err.Error()
}

// rawSMTP speaks SMTP by hand, for what a well-behaved client library refuses to send (bare
// LF). It returns the reply to the end of DATA.
func rawSMTP(t *testing.T, addr, from, to string, data string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reply := replies(conn)
	reply()
	for _, cmd := range []string{"EHLO client.example.test", "MAIL FROM:<" + from + ">", "RCPT TO:<" + to + ">", "DATA"} {
		io.WriteString(conn, cmd+"\r\n")
		reply()
	}
	io.WriteString(conn, data)
	return reply()
}

// replies reads SMTP replies from conn: each call returns the last line of the next reply
// (multi-line replies are read whole), or "(connection closed)".
func replies(conn net.Conn) func() string {
	r := bufio.NewReader(conn)
	return func() string {
		var last string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return "(connection closed)"
			}
			last = strings.TrimRight(line, "\r\n")
			if len(last) < 4 || last[3] != '-' {
				return last
			}
		}
	}
}

// post is a small message from a member.
func post(from, subject, msgid, body string) []byte {
	return []byte(fmt.Sprintf("From: %s\r\nTo: crew@%s\r\nSubject: %s\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%s>\r\n\r\n%s", from, testDomain, subject, msgid, body))
}

// waitOutbox polls the outbox until cond holds for its rows. Polling stands in for an event
// the server does not publish; the deadline is only reached when something is broken.
func (ts *testServer) waitOutbox(t *testing.T, what string, cond func([]store.Delivery) bool) []store.Delivery {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var rows []store.Delivery
		err := ts.st.View(func(tx store.Tx) error {
			return tx.Outbox(func(d store.Delivery) error {
				rows = append(rows, d)
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if cond(rows) {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox never reached %s: %+v", what, rows)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newCrew makes a running server with crew@lists.example.test and members in each mode.
func newCrew(t *testing.T, sink *mailtest.Sink, members ...string) *testServer {
	t.Helper()
	ts := startTestServer(t, testConfig(t, t.TempDir(), sink.Addr, ""))
	ts.mustCLI(t, "list", "create", "crew@"+testDomain, "-name", "Garden crew")
	if len(members) > 0 {
		ts.mustCLI(t, append([]string{"member", "add", "crew@" + testDomain}, members...)...)
	}
	return ts
}

// startBenchServer is startTestServer for benchmarks; more are more lines of its configuration.
func startBenchServer(b *testing.B, dir, smarthost string, more ...string) *testServer {
	b.Helper()
	path := filepath.Join(dir, "crewmail.toml")
	text := fmt.Sprintf("hostname = %q\ndata_dir = %q\n[log]\nlevel = \"warn\"\n[smtp]\nlisten = \"127.0.0.1:0\"\n[http]\nlisten = \"\"\n[imap]\nlisten = \"\"\n[delivery]\nmode = \"smarthost\"\nsmarthost = %q\nsmarthost_tls = \"none\"\n", testDomain, filepath.Join(dir, "data"), smarthost) + strings.Join(more, "")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := startServer(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	return &testServer{server: srv, cfgPath: path}
}

func (ts *testServer) mustCLIb(b *testing.B, args ...string) {
	b.Helper()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), append([]string{"-config", ts.cfgPath}, args...), &out, &errOut); code != 0 {
		b.Fatalf("crewmail %v: %s", args, errOut.String())
	}
}
