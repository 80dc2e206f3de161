package delivery_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"crewmail/delivery"
	"crewmail/internal/mailtest"
)

var testMsg = []byte("From: list@crew.test\r\nTo: someone@example.test\r\nSubject: hello\r\n\r\nbody\r\n..two dots\r\n")

// sendOnce calls tr.Send with a generous deadline.
func sendOnce(tr delivery.Transport, from, to string, msg []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return tr.Send(ctx, from, to, msg)
}

// wantOne fails unless srv received exactly one message, the one sent with from, to and
// testMsg, and returns it.
func wantOne(t testing.TB, srv *testServer, from, to string) received {
	t.Helper()
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.From != from || !slices.Equal(m.To, []string{to}) {
		t.Errorf("envelope %q → %q, want %q → [%q]", m.From, m.To, from, to)
	}
	if !bytes.Equal(m.Data, testMsg) {
		t.Errorf("message\n%q\nwant\n%q", m.Data, testMsg)
	}
	if m.Helo != "crewmail.test" {
		t.Errorf("EHLO %q, want crewmail.test", m.Helo)
	}
	return m
}

func TestSmarthostTLSModes(t *testing.T) {
	t.Parallel()
	cert := newTestCert(t)
	other := newTestCert(t) // a CA that did not sign the server's certificate
	failingTLS := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return nil, errors.New("no certificate today")
	}}
	tests := []struct {
		name    string
		server  serverOptions
		mode    string
		roots   *x509.CertPool
		wantErr string // "" = delivered
		wantTLS bool
	}{
		{name: "starttls verified", server: serverOptions{startTLS: cert.serverConfig()}, mode: delivery.TLSStartTLS, roots: cert.pool, wantTLS: true},
		{name: "starttls to a server without STARTTLS", server: serverOptions{}, mode: delivery.TLSStartTLS, roots: cert.pool, wantErr: "STARTTLS"},
		{name: "starttls with an untrusted certificate", server: serverOptions{startTLS: cert.serverConfig()}, mode: delivery.TLSStartTLS, roots: other.pool, wantErr: "certificate"},
		{name: "starttls with a failing handshake", server: serverOptions{startTLS: failingTLS}, mode: delivery.TLSStartTLS, roots: cert.pool, wantErr: "tls"},
		{name: "opportunistic without STARTTLS falls back to plain", server: serverOptions{}, mode: delivery.TLSOpportunistic, wantTLS: false},
		{name: "opportunistic takes STARTTLS without verifying", server: serverOptions{startTLS: cert.serverConfig()}, mode: delivery.TLSOpportunistic, roots: other.pool, wantTLS: true},
		{name: "opportunistic falls back after a failed handshake", server: serverOptions{startTLS: failingTLS}, mode: delivery.TLSOpportunistic, wantTLS: false},
		{name: "implicit TLS verified", server: serverOptions{implicit: cert.serverConfig()}, mode: delivery.TLSImplicit, roots: cert.pool, wantTLS: true},
		{name: "implicit TLS with an untrusted certificate", server: serverOptions{implicit: cert.serverConfig()}, mode: delivery.TLSImplicit, roots: other.pool, wantErr: "certificate"},
		{name: "none ignores STARTTLS", server: serverOptions{startTLS: cert.serverConfig()}, mode: delivery.TLSNone, wantTLS: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, tt.server)
			sh := delivery.NewSmarthost(srv.Addr, "crewmail.test", tt.mode, "", "", tt.roots, nil)
			err := sendOnce(sh, "crew-bounces@crew.test", "someone@example.test", testMsg)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Send succeeded, want an error about %s", tt.wantErr)
				}
				if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.wantErr)) {
					t.Errorf("Send: %v, want an error about %s", err, tt.wantErr)
				}
				if n := len(srv.Messages()); n != 0 {
					t.Errorf("server got %d messages despite the TLS failure", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			m := wantOne(t, srv, "crew-bounces@crew.test", "someone@example.test")
			if m.TLS != tt.wantTLS {
				t.Errorf("server saw TLS=%v, want %v", m.TLS, tt.wantTLS)
			}
		})
	}
}

// TestSmarthostUntrustedCertificateError: the error says which check failed, so an operator can
// fix the trust store.
func TestSmarthostUntrustedCertificateError(t *testing.T) {
	t.Parallel()
	cert, other := newTestCert(t), newTestCert(t)
	srv := newTestServer(t, serverOptions{startTLS: cert.serverConfig()})
	sh := delivery.NewSmarthost(srv.Addr, "crewmail.test", delivery.TLSStartTLS, "", "", other.pool, nil)
	err := sendOnce(sh, "a@crew.test", "b@example.test", testMsg)
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Fatalf("Send: %v, want a *tls.CertificateVerificationError in the chain", err)
	}
}

func TestSmarthostAuth(t *testing.T) {
	t.Parallel()
	cert := newTestCert(t)
	users := map[string]string{"crew": "s3cret pass"}
	tests := []struct {
		name     string
		server   serverOptions
		mode     string
		password string
		wantErr  bool
		wantTLS  bool
	}{
		{name: "PLAIN over STARTTLS", server: serverOptions{startTLS: cert.serverConfig(), users: users}, mode: delivery.TLSStartTLS, password: "s3cret pass", wantTLS: true},
		{name: "PLAIN over implicit TLS", server: serverOptions{implicit: cert.serverConfig(), users: users}, mode: delivery.TLSImplicit, password: "s3cret pass", wantTLS: true},
		{name: "PLAIN over plain text to loopback", server: serverOptions{users: users, insecureAuth: true}, mode: delivery.TLSNone, password: "s3cret pass"},
		{name: "wrong password", server: serverOptions{startTLS: cert.serverConfig(), users: users}, mode: delivery.TLSStartTLS, password: "guess", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, tt.server)
			sh := delivery.NewSmarthost(srv.Addr, "crewmail.test", tt.mode, "crew", tt.password, cert.pool, nil)
			err := sendOnce(sh, "crew-bounces@crew.test", "someone@example.test", testMsg)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "AUTH") || !strings.Contains(err.Error(), "535") {
					t.Errorf("Send: %v, want the server's 535 AUTH refusal", err)
				}
				if n := len(srv.Messages()); n != 0 {
					t.Errorf("server got %d messages", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			m := wantOne(t, srv, "crew-bounces@crew.test", "someone@example.test")
			if m.AuthUser != "crew" || m.TLS != tt.wantTLS {
				t.Errorf("server saw user %q TLS=%v, want crew and TLS=%v", m.AuthUser, m.TLS, tt.wantTLS)
			}
		})
	}
}

// TestSmarthostReplies: the server's reply decides whether a failure is permanent.
func TestSmarthostReplies(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		reply     error
		permanent bool
	}{
		{"550", mailtest.ErrPermanent, true},
		{"451", mailtest.ErrTemporary, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sink := mailtest.NewSink(t)
			sink.Reject = func(mailtest.Message) error { return tt.reply }
			err := sendOnce(plainSmarthost(sink.Addr), "a@crew.test", "b@example.test", testMsg)
			if err == nil {
				t.Fatal("Send succeeded, want the server's refusal")
			}
			if !strings.Contains(err.Error(), tt.name) {
				t.Errorf("Send: %v, want it to carry the reply %s", err, tt.name)
			}
			if got := delivery.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, got, tt.permanent)
			}
		})
	}
}

// TestSmarthostDown: a smarthost that does not listen is a temporary problem.
func TestSmarthostDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{delivery.TLSNone, delivery.TLSOpportunistic, delivery.TLSStartTLS, delivery.TLSImplicit} {
		err := sendOnce(delivery.NewSmarthost(addr, "crewmail.test", mode, "", "", nil, nil), "a@crew.test", "b@example.test", testMsg)
		if err == nil || delivery.IsPermanent(err) {
			t.Errorf("mode %s: Send to a closed port: %v, want a temporary error", mode, err)
		}
	}
}

func TestSmarthostSMTPUTF8(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		smtputf8 bool // the server offers SMTPUTF8
		from, to string
		wantErr  bool // a permanent error, nothing sent
		wantFrom string
		wantTo   string
		wantUTF8 bool
	}{
		{name: "ASCII needs no SMTPUTF8", smtputf8: true, from: "crew@crew.test", to: "ann@example.test",
			wantFrom: "crew@crew.test", wantTo: "ann@example.test"},
		{name: "non-ASCII local part with SMTPUTF8", smtputf8: true, from: "crew@crew.test", to: "jörg@example.test",
			wantFrom: "crew@crew.test", wantTo: "jörg@example.test", wantUTF8: true},
		{name: "non-ASCII local part without SMTPUTF8", smtputf8: false, from: "crew@crew.test", to: "jörg@example.test",
			wantErr: true},
		{name: "IDN domain with SMTPUTF8", smtputf8: true, from: "crew@crew.test", to: "ann@bücher.example",
			wantFrom: "crew@crew.test", wantTo: "ann@bücher.example", wantUTF8: true},
		{name: "IDN domain without SMTPUTF8 becomes A-labels", smtputf8: false, from: "crew@crew.test", to: "ann@bücher.example",
			wantFrom: "crew@crew.test", wantTo: "ann@xn--bcher-kva.example"},
		{name: "null sender, IDN recipient without SMTPUTF8", smtputf8: false, from: "", to: "ann@bücher.example",
			wantFrom: "", wantTo: "ann@xn--bcher-kva.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, serverOptions{smtputf8: tt.smtputf8})
			err := sendOnce(plainSmarthost(srv.Addr), tt.from, tt.to, testMsg)
			if tt.wantErr {
				if err == nil || !delivery.IsPermanent(err) {
					t.Errorf("Send: %v, want a permanent error", err)
				}
				if n := len(srv.Messages()); n != 0 {
					t.Errorf("server got %d messages", n)
				}
				// The client knows the peer lacks SMTPUTF8: it must not try at all.
				if froms := srv.MailFroms(); len(froms) != 0 {
					t.Errorf("client sent MAIL FROM %q to a server without SMTPUTF8", froms)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			m := wantOne(t, srv, tt.wantFrom, tt.wantTo)
			if m.UTF8 != tt.wantUTF8 {
				t.Errorf("MAIL FROM SMTPUTF8=%v, want %v", m.UTF8, tt.wantUTF8)
			}
		})
	}
}

// TestSmarthostSenderWithoutSMTPUTF8 is a regression test: with a peer that lacks SMTPUTF8, the
// envelope sender must be made ASCII like the recipient (RFC 6531 §3.2; RFC 5321 allows only
// ASCII): its domain in A-labels — the list's own domain may well be an IDN — and a non-ASCII
// local part refused before MAIL FROM. send converts only the recipient and passes the sender
// through as UTF-8.
func TestSmarthostSenderWithoutSMTPUTF8(t *testing.T) {
	t.Parallel()
	t.Run("IDN domain becomes A-labels", func(t *testing.T) {
		t.Parallel()
		srv := newTestServer(t, serverOptions{smtputf8: false})
		err := sendOnce(plainSmarthost(srv.Addr), "crew-bounces@bücher.example", "ann@example.test", testMsg)
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		m := wantOne(t, srv, "crew-bounces@xn--bcher-kva.example", "ann@example.test")
		if m.UTF8 {
			t.Errorf("MAIL FROM carried SMTPUTF8 to a server that does not offer it")
		}
	})
	t.Run("non-ASCII local part is refused before MAIL FROM", func(t *testing.T) {
		t.Parallel()
		srv := newTestServer(t, serverOptions{smtputf8: false})
		err := sendOnce(plainSmarthost(srv.Addr), "jörg-bounces@crew.test", "ann@example.test", testMsg)
		if err == nil || !delivery.IsPermanent(err) {
			t.Errorf("Send: %v, want a permanent error", err)
		}
		if froms := srv.MailFroms(); len(froms) != 0 {
			t.Errorf("client sent MAIL FROM %q to a server without SMTPUTF8", froms)
		}
	})
}

// TestSmarthostRejectedCredentialsDeferMail is a regression test: when the smarthost refuses
// crewmail's own username and password (535), the fault is in crewmail's configuration, not in
// the message or its recipient, and every message would meet it. Recording each delivery as
// failed for good would bounce the whole outbox (and count against every member) over a
// password change; like a required STARTTLS the relay does not offer, it must be a temporary
// failure that retries once the operator has fixed the setting (Postfix's
// smtp_sasl_auth_soft_bounce, on by default). send wraps the 535 as is, and IsPermanent calls
// every 5xx permanent.
func TestSmarthostRejectedCredentialsDeferMail(t *testing.T) {
	t.Parallel()
	cert := newTestCert(t)
	srv := newTestServer(t, serverOptions{startTLS: cert.serverConfig(), users: map[string]string{"crew": "new password"}})
	sh := delivery.NewSmarthost(srv.Addr, "crewmail.test", delivery.TLSStartTLS, "crew", "old password", cert.pool, nil)
	err := sendOnce(sh, "crew-bounces@crew.test", "ann@example.test", testMsg)
	if err == nil {
		t.Fatal("Send with a wrong password succeeded")
	}
	if delivery.IsPermanent(err) {
		t.Errorf("Send with a wrong password: %v is permanent, want a temporary failure", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("server got %d messages", n)
	}
}
