package delivery_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"crewmail/delivery"
	"crewmail/internal/mailtest"
)

// sendN sends n messages one after another through tr, to r0@, r1@, …
func sendN(t testing.TB, tr delivery.Transport, n int) {
	t.Helper()
	for i := range n {
		if err := sendOnce(tr, "crew-bounces@crew.test", fmt.Sprintf("r%d@example.test", i), testMsg); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
}

func wantConns(t testing.TB, srv *testServer, want int) {
	t.Helper()
	if accepted, _ := srv.Conns(); accepted != want {
		t.Errorf("server accepted %d connections, want %d", accepted, want)
	}
}

// TestSmarthostReusesSessions: consecutive messages share one connection, with its TLS and
// authentication.
func TestSmarthostReusesSessions(t *testing.T) {
	t.Parallel()
	cert := newTestCert(t)
	for _, tt := range []struct {
		name string
		opts serverOptions
		mode string
		user string
	}{
		{"plain", serverOptions{}, delivery.TLSNone, ""},
		{"STARTTLS and AUTH", serverOptions{startTLS: cert.serverConfig(), users: map[string]string{"crew": "pw"}}, delivery.TLSStartTLS, "crew"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, tt.opts)
			sh := delivery.NewSmarthost(srv.Addr, "crewmail.test", tt.mode, tt.user, "pw", cert.pool, nil)
			t.Cleanup(func() { sh.Close() })
			sendN(t, sh, 3)
			msgs := srv.Messages()
			if len(msgs) != 3 {
				t.Fatalf("server got %d messages, want 3", len(msgs))
			}
			for i, m := range msgs {
				if want := fmt.Sprintf("r%d@example.test", i); !slices.Equal(m.To, []string{want}) {
					t.Errorf("message %d to %v, want [%s]", i, m.To, want)
				}
				if m.AuthUser != tt.user || m.TLS != (tt.mode == delivery.TLSStartTLS) {
					t.Errorf("message %d: user %q TLS=%v, want %q and TLS=%v", i, m.AuthUser, m.TLS, tt.user, tt.mode == delivery.TLSStartTLS)
				}
			}
			wantConns(t, srv, 1)
		})
	}
}

// TestSmarthostSessionSurvivesRefusal: a refused message does not cost the connection, nor leave
// it in the middle of a transaction.
func TestSmarthostSessionSurvivesRefusal(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverOptions{reject: func(to string) error {
		if to == "gone@example.test" {
			return mailtest.ErrPermanent
		}
		return nil
	}})
	sh := plainSmarthost(srv.Addr)
	t.Cleanup(func() { sh.Close() })
	if err := sendOnce(sh, "crew-bounces@crew.test", "gone@example.test", testMsg); err == nil || !delivery.IsPermanent(err) {
		t.Fatalf("send to gone@: %v, want a permanent error", err)
	}
	if err := sendOnce(sh, "crew-bounces@crew.test", "ann@example.test", testMsg); err != nil {
		t.Fatalf("send after the refusal: %v", err)
	}
	wantOne(t, srv, "crew-bounces@crew.test", "ann@example.test")
	wantConns(t, srv, 1)
}

// TestSmarthostRedialsDroppedSession: an idle connection the server dropped without a word is
// no failure of the next message: it goes out on a new connection.
func TestSmarthostRedialsDroppedSession(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverOptions{})
	sh := plainSmarthost(srv.Addr)
	t.Cleanup(func() { sh.Close() })
	sendN(t, sh, 1)
	srv.DropAll()
	srv.waitClosed(t, 1)
	if err := sendOnce(sh, "crew-bounces@crew.test", "ann@example.test", testMsg); err != nil {
		t.Fatalf("send after the server dropped the idle connection: %v", err)
	}
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("server got %d messages, want 2", n)
	}
	wantConns(t, srv, 2)
}

// TestSmarthostIdleTimeout421IsNoFailure is a regression test. A server that times out an idle
// connection says "421 4.4.2 Idle timeout" and closes it (go-smtp, Postfix). The client reads
// that 421 as the answer to the next message's MAIL FROM on the kept session, and because it
// is an SMTP reply, send returns it as that message's failure instead of dialling again.
func TestSmarthostIdleTimeout421IsNoFailure(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverOptions{readTimeout: time.Second})
	sh := plainSmarthost(srv.Addr)
	t.Cleanup(func() { sh.Close() })
	sendN(t, sh, 1)
	srv.waitClosed(t, 1) // the server's idle timeout ran out: 421 and close
	if err := sendOnce(sh, "crew-bounces@crew.test", "ann@example.test", testMsg); err != nil {
		t.Fatalf("send after the server timed out the idle connection: %v", err)
	}
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("server got %d messages, want 2", n)
	}
}

// TestSmarthostCloseEndsIdleSessions: Close hangs up the kept connections; the transport still
// works afterwards.
func TestSmarthostCloseEndsIdleSessions(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverOptions{})
	sh := plainSmarthost(srv.Addr)
	sendN(t, sh, 2)
	if err := sh.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	srv.waitClosed(t, 1)
	sendN(t, sh, 1)
	if err := sh.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	srv.waitClosed(t, 2)
	if n := len(srv.Messages()); n != 3 {
		t.Errorf("server got %d messages, want 3", n)
	}
	wantConns(t, srv, 2)
}

// TestSmarthostParallelSends: workers sharing one transport each get a session of their own;
// every message arrives once.
func TestSmarthostParallelSends(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverOptions{})
	sh := plainSmarthost(srv.Addr)
	t.Cleanup(func() { sh.Close() })
	const workers, each = 8, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				errs <- sendOnce(sh, "crew-bounces@crew.test", fmt.Sprintf("w%d-%d@example.test", w, i), testMsg)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("send: %v", err)
		}
	}
	got := map[string]int{}
	for _, m := range srv.Messages() {
		for _, to := range m.To {
			got[to]++
		}
	}
	for w := range workers {
		for i := range each {
			if to := fmt.Sprintf("w%d-%d@example.test", w, i); got[to] != 1 {
				t.Errorf("%s got %d copies, want 1", to, got[to])
			}
		}
	}
	if accepted, _ := srv.Conns(); accepted > workers {
		t.Errorf("server accepted %d connections for %d concurrent senders", accepted, workers)
	}
}

// TestSmarthostSessionNotReusedForever: a long run of messages does not ride one connection
// for ever.
func TestSmarthostSessionNotReusedForever(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverOptions{})
	sh := plainSmarthost(srv.Addr)
	t.Cleanup(func() { sh.Close() })
	sendN(t, sh, 250)
	if n := len(srv.Messages()); n != 250 {
		t.Errorf("server got %d messages, want 250", n)
	}
	if accepted, _ := srv.Conns(); accepted < 2 {
		t.Errorf("250 messages went over %d connection(s)", accepted)
	}
}

// TestMXReusesSessions: a second message to the same exchanger goes over the connection the
// first one left open.
func TestMXReusesSessions(t *testing.T) {
	t.Parallel()
	cert := newTestCert(t)
	for _, tt := range []struct {
		name string
		opts serverOptions
	}{
		{"STARTTLS", serverOptions{startTLS: cert.serverConfig()}},
		{"plain", serverOptions{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, tt.opts)
			dns := newDNS(t, "crew.test. 300 IN MX 10 mx.crew.test.", "mx.crew.test. 300 IN A 127.0.0.1")
			mx := delivery.NewMX(delivery.NewResolver(dns.Addr), portOf(t, srv.Addr), "crewmail.test")
			t.Cleanup(func() { mx.Close() })
			if err := sendOnce(mx, "crew-bounces@crew.test", "ann@crew.test", testMsg); err != nil {
				t.Fatalf("send: %v", err)
			}
			before, _ := srv.Conns()
			if err := sendOnce(mx, "crew-bounces@crew.test", "bob@crew.test", testMsg); err != nil {
				t.Fatalf("send: %v", err)
			}
			msgs := srv.Messages()
			if len(msgs) != 2 {
				t.Fatalf("server got %d messages, want 2", len(msgs))
			}
			if msgs[1].TLS != (tt.opts.startTLS != nil) {
				t.Errorf("second message TLS=%v, want %v", msgs[1].TLS, tt.opts.startTLS != nil)
			}
			if after, _ := srv.Conns(); after != before {
				t.Errorf("the second message opened %d new connection(s), want none", after-before)
			}
		})
	}
}

// TestSmarthostSlowQuitHoldsNothingUp is a regression test: when the client retires a session
// (after it carried its share of messages, or with too many idle), it must not wait for the
// peer's answer to QUIT while the message has long been delivered — client.put calls Quit
// with client.mu held, so the Send that retires the session, and every other Send through
// the same transport, waits for that reply (up to the rest of the attempt's timeout).
func TestSmarthostSlowQuitHoldsNothingUp(t *testing.T) {
	t.Parallel()
	hold, quits := make(chan struct{}), make(chan struct{}, 1)
	srv := newTestServer(t, serverOptions{holdQuit: hold, quits: quits})
	sh := plainSmarthost(srv.Addr)
	t.Cleanup(func() { sh.Close() })
	t.Cleanup(func() { close(hold) }) // runs first: lets the held replies out
	const n = 250                     // enough for a session to be retired on the way
	done := make(chan error, 1)
	go func() {
		for i := range n {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			err := sh.Send(ctx, "crew-bounces@crew.test", fmt.Sprintf("r%d@example.test", i), testMsg)
			cancel()
			if err != nil {
				done <- fmt.Errorf("send %d: %w", i, err)
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		select {
		case <-quits:
			t.Fatalf("sending stalled behind a QUIT the server has not answered yet (%d of %d sent)", len(srv.Messages()), n)
		default:
			t.Fatalf("sending stalled (%d of %d sent)", len(srv.Messages()), n)
		}
	}
	if got := len(srv.Messages()); got != n {
		t.Errorf("server got %d messages, want %d", got, n)
	}
	if accepted, _ := srv.Conns(); accepted < 2 {
		t.Errorf("no session was retired over %d messages: the test proves nothing", n)
	}
}
