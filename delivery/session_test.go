package delivery_test

import (
	"context"
	"crypto/tls"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"crewmail/delivery"
	"crewmail/internal/outcome"
	"crewmail/store"
)

// TestMXGreetsWithOurNameOnOneTLSConnection: a receiver that refuses a HELO name without a
// dot (Postfix's reject_non_fqdn_helo_hostname) gets our own name in every EHLO, STARTTLS on
// the same connection, and the message over TLS: one TCP connection, no plain-text fallback.
func TestMXGreetsWithOurNameOnOneTLSConnection(t *testing.T) {
	t.Parallel()
	cert := newTestCert(t)
	srv := newTestServer(t, serverOptions{startTLS: cert.serverConfig(), fqdnHelo: true})
	dns := newDNS(t, "tls.test. 300 IN MX 10 mx.tls.test.", "mx.tls.test. 300 IN A 127.0.0.1")
	mx := delivery.NewMX(delivery.NewResolver(dns.Addr), portOf(t, srv.Addr), "crewmail.test")
	var note delivery.Note
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := mx.Send(delivery.WithNote(ctx, &note), "crew-bounces@crew.test", "ann@tls.test", testMsg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := wantOne(t, srv, "crew-bounces@crew.test", "ann@tls.test")
	if !m.TLS {
		t.Errorf("the message went in plain text, want STARTTLS")
	}
	// EHLO, STARTTLS, EHLO again (RFC 3207 §4.2): both with our name.
	if helos, _ := srv.Helos(); !slices.Equal(helos, []string{"crewmail.test", "crewmail.test"}) {
		t.Errorf("EHLO names %q, want crewmail.test before and after STARTTLS", helos)
	}
	if accepted, _ := srv.Conns(); accepted != 1 {
		t.Errorf("%d TCP connections, want 1", accepted)
	}
	if note.TLS == "" || note.Fallback != "" {
		t.Errorf("attempt note %+v, want a TLS version and no fallback", note)
	}
	// Done with the destination: the session ends with QUIT, not a dropped connection.
	mx.Close()
	srv.waitClosed(t, 1)
}

// TestOpportunisticTLSFallbackIsNoted: when the handshake itself fails, opportunistic TLS
// delivers in plain text and the attempt says why; required TLS does not deliver.
func TestOpportunisticTLSFallbackIsNoted(t *testing.T) {
	t.Parallel()
	// STARTTLS is offered, but the server has no certificate: every handshake fails.
	srv := newTestServer(t, serverOptions{startTLS: &tls.Config{}})
	dns := newDNS(t, "broken.test. 300 IN MX 10 mx.broken.test.", "mx.broken.test. 300 IN A 127.0.0.1")
	mx := delivery.NewMX(delivery.NewResolver(dns.Addr), portOf(t, srv.Addr), "crewmail.test")
	var note delivery.Note
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := mx.Send(delivery.WithNote(ctx, &note), "crew-bounces@crew.test", "ann@broken.test", testMsg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if m := wantOne(t, srv, "crew-bounces@crew.test", "ann@broken.test"); m.TLS {
		t.Errorf("the message went over TLS, want plain text after the failed handshake")
	}
	if note.Fallback == "" || note.TLS != "" {
		t.Errorf("attempt note %+v, want the fallback and its reason", note)
	}

	sh := delivery.NewSmarthost(srv.Addr, "crewmail.test", delivery.TLSStartTLS, "", "", nil, nil)
	err := sendOnce(sh, "crew-bounces@crew.test", "bob@broken.test", testMsg)
	if got := delivery.Outcome(err); err == nil || got.Step != outcome.TLS || got.Permanent {
		t.Errorf("required TLS with a failing handshake: %v (%+v), want a temporary failure at the TLS step", err, got)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("server has %d messages, want only the first", n)
	}
}

// TestRefusalsAtRcptTravelAsData: what the server said at RCPT reaches bounce accounting as
// data: the step, the reply code, the enhanced status code and the server's own text.
func TestRefusalsAtRcptTravelAsData(t *testing.T) {
	t.Parallel()
	replies := map[string]*smtp.SMTPError{
		"denied@example.test": {Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Access denied"},
		"ms@example.test":     {Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 708}, Message: "Access denied, traffic not accepted from this IP"},
		"gone@example.test":   {Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"},
	}
	srv := newTestServer(t, serverOptions{rcpt: func(to string) error {
		if e := replies[to]; e != nil {
			return e
		}
		return nil
	}})
	st := openStore(t)
	got := map[string]outcome.Result{}
	failed := make(chan struct{}, 3)
	q, _ := newQueue(t, st, composeMessage, plainSmarthost(srv.Addr), delivery.Config{Failed: func(_ store.Tx, d store.Delivery, r outcome.Result) error {
		got[d.To] = r
		failed <- struct{}{}
		return nil
	}})
	for to := range replies {
		enqueue(t, st, store.Delivery{List: "crew", Seq: 1, From: "crew-bounces@crew.test", To: to, Created: t0})
	}
	runQueue(t, q)
	for range replies {
		select {
		case <-failed:
		case <-time.After(time.Minute):
			t.Fatal("timed out waiting for the failures")
		}
	}
	for to, e := range replies {
		r := got[to]
		status := fmtStatus(e.EnhancedCode)
		if r.Step != outcome.Rcpt || r.Code != e.Code || r.Status != status || r.Text != e.Message || !r.Permanent {
			t.Errorf("%s: outcome %+v, want rcpt %d %s %q, permanent", to, r, e.Code, status, e.Message)
		}
		if policy := status[:4] == "5.7."; r.Policy() != policy {
			t.Errorf("%s: Policy() = %v, want %v", to, r.Policy(), policy)
		}
	}
}

func fmtStatus(c smtp.EnhancedCode) string {
	return itoa(c[0]) + "." + itoa(c[1]) + "." + itoa(c[2])
}

// TestPlainMXTakesOneConnection: an MX that offers no STARTTLS gets the message on the
// connection it greeted, not on a second one after a probe.
func TestPlainMXTakesOneConnection(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverOptions{fqdnHelo: true})
	dns := newDNS(t, "plain.test. 300 IN MX 10 mx.plain.test.", "mx.plain.test. 300 IN A 127.0.0.1")
	mx := delivery.NewMX(delivery.NewResolver(dns.Addr), portOf(t, srv.Addr), "crewmail.test")
	if err := sendOnce(mx, "crew-bounces@crew.test", "ann@plain.test", testMsg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if m := wantOne(t, srv, "crew-bounces@crew.test", "ann@plain.test"); m.TLS {
		t.Errorf("TLS with a server that offers none")
	}
	if accepted, _ := srv.Conns(); accepted != 1 {
		t.Errorf("%d TCP connections, want 1", accepted)
	}
}

// TestRateLimitOnAReusedSessionIsNotRedialled: a 421 that says we send too fast ends the
// attempt; only a bare 421 (an idle session timed out) is worth a new connection at once.
func TestRateLimitOnAReusedSessionIsNotRedialled(t *testing.T) {
	t.Parallel()
	var limited atomic.Bool
	srv := newTestServer(t, serverOptions{rcpt: func(string) error {
		if limited.Load() {
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 28}, Message: "rate limited"}
		}
		return nil
	}})
	sh := plainSmarthost(srv.Addr)
	t.Cleanup(func() { sh.Close() })
	if err := sendOnce(sh, "crew-bounces@crew.test", "ann@example.test", testMsg); err != nil {
		t.Fatalf("first Send: %v", err)
	}
	limited.Store(true)
	err := sendOnce(sh, "crew-bounces@crew.test", "ben@example.test", testMsg)
	if r := delivery.Outcome(err); r.Code != 421 || r.Status != "4.7.28" || !r.Throttled() {
		t.Fatalf("second Send: %v (%+v), want the 421 4.7.28", err, r)
	}
	if accepted, _ := srv.Conns(); accepted != 1 {
		t.Errorf("%d TCP connections, want 1: no new connection after a rate-limit 421", accepted)
	}
}
