package delivery_test

import (
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"crewmail/delivery"
	"crewmail/internal/mailtest"
)

// requireRefused skips the test unless connecting to addr is refused at once, as on Linux for
// any 127/8 address nothing listens on.
func requireRefused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err == nil {
		c.Close()
		t.Skipf("%s accepts connections here", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Skipf("%s is not refused here: %v", addr, err)
	}
}

func TestMX(t *testing.T) {
	t.Parallel()
	const from = "crew-bounces@crew.test"
	type check func(t *testing.T, err error, sink *mailtest.Sink, calls int32)
	delivered := func(to string) check {
		return func(t *testing.T, err error, sink *mailtest.Sink, _ int32) {
			t.Helper()
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs := sink.Messages()
			if len(msgs) != 1 {
				t.Fatalf("sink got %d messages, want 1", len(msgs))
			}
			if m := msgs[0]; m.From != from || len(m.To) != 1 || m.To[0] != to || string(m.Data) != string(testMsg) {
				t.Errorf("sink got %q → %q:\n%q\nwant %q → [%q]:\n%q", m.From, m.To, m.Data, from, to, testMsg)
			}
		}
	}
	failed := func(permanent bool, mentions string) check {
		return func(t *testing.T, err error, sink *mailtest.Sink, _ int32) {
			t.Helper()
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if got := delivery.IsPermanent(err); got != permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, got, permanent)
			}
			if !strings.Contains(err.Error(), mentions) {
				t.Errorf("Send: %v, want it to mention %q", err, mentions)
			}
			if n := len(sink.Messages()); n != 0 {
				t.Errorf("sink got %d messages, want none", n)
			}
		}
	}
	tests := []struct {
		name     string
		records  []string
		to       string
		servfail bool
		reject   func(n int32) error // the sink's answer to its n-th message (1-based)
		needs2   bool                // needs 127.0.0.2 to refuse connections
		check    []check
		calls    int32 // how many messages the sink must have been offered; -1 = any
	}{
		{
			name:    "MX record",
			records: []string{"crew.test. 300 IN MX 10 mx.crew.test.", "mx.crew.test. 300 IN A 127.0.0.1"},
			to:      "ann@crew.test",
			check:   []check{delivered("ann@crew.test")},
			calls:   1,
		},
		{
			name:    "implicit MX",
			records: []string{"bare.test. 300 IN A 127.0.0.1"},
			to:      "ann@bare.test",
			check:   []check{delivered("ann@bare.test")},
			calls:   1,
		},
		{
			name:    "IDN domain is looked up in A-labels",
			records: []string{"xn--bcher-kva.test. 300 IN MX 10 mx.xn--bcher-kva.test.", "mx.xn--bcher-kva.test. 300 IN A 127.0.0.1"},
			to:      "ann@bücher.test",
			check:   []check{delivered("ann@bücher.test")},
			calls:   1,
		},
		{
			name:    "null MX",
			records: []string{"nullmx.test. 300 IN MX 0 .", "nullmx.test. 300 IN A 127.0.0.1"},
			to:      "ann@nullmx.test",
			check:   []check{failed(true, "null MX")},
			calls:   0,
		},
		{
			name:    "NXDOMAIN",
			records: []string{"crew.test. 300 IN A 127.0.0.1"},
			to:      "ann@nowhere.test",
			check:   []check{failed(true, "nowhere.test")},
			calls:   0,
		},
		{
			name:     "SERVFAIL is temporary",
			records:  []string{"crew.test. 300 IN MX 10 mx.crew.test.", "mx.crew.test. 300 IN A 127.0.0.1"},
			to:       "ann@crew.test",
			servfail: true,
			check:    []check{failed(false, "crew.test")},
			calls:    0,
		},
		{
			name: "preferred MX refuses connections",
			records: []string{
				"two.test. 300 IN MX 20 up.two.test.",
				"two.test. 300 IN MX 10 down.two.test.",
				"down.two.test. 300 IN A 127.0.0.2",
				"up.two.test. 300 IN A 127.0.0.1",
			},
			needs2: true,
			to:     "ann@two.test",
			check:  []check{delivered("ann@two.test")},
			calls:  1,
		},
		{
			name: "preferred MX has no address",
			records: []string{
				"noa.test. 300 IN MX 10 ghost.noa.test.",
				"noa.test. 300 IN MX 20 up.noa.test.",
				"up.noa.test. 300 IN A 127.0.0.1",
			},
			to:    "ann@noa.test",
			check: []check{delivered("ann@noa.test")},
			calls: 1,
		},
		{
			name: "a temporary refusal moves on to the next MX",
			records: []string{
				"retry.test. 300 IN MX 10 a.retry.test.",
				"retry.test. 300 IN MX 20 b.retry.test.",
				"a.retry.test. 300 IN A 127.0.0.1",
				"b.retry.test. 300 IN A 127.0.0.1",
			},
			to: "ann@retry.test",
			reject: func(n int32) error {
				if n == 1 {
					return mailtest.ErrTemporary
				}
				return nil
			},
			check: []check{delivered("ann@retry.test")},
			calls: 2,
		},
		{
			name: "a permanent refusal is final",
			records: []string{
				"final.test. 300 IN MX 10 a.final.test.",
				"final.test. 300 IN MX 20 b.final.test.",
				"a.final.test. 300 IN A 127.0.0.1",
				"b.final.test. 300 IN A 127.0.0.1",
			},
			to:     "ann@final.test",
			reject: func(int32) error { return mailtest.ErrPermanent },
			check:  []check{failed(true, "550")},
			calls:  1,
		},
		{
			name:    "every MX down is temporary",
			records: []string{"down.test. 300 IN MX 10 mx.down.test.", "mx.down.test. 300 IN A 127.0.0.2"},
			needs2:  true,
			to:      "ann@down.test",
			check:   []check{failed(false, "127.0.0.2")},
			calls:   0,
		},
		{
			// Listed worst first: the exchangers are still tried best first, so the error is
			// about the last, least preferred one.
			name: "exchangers are tried best first",
			records: []string{
				"order.test. 300 IN MX 20 second.order.test.",
				"order.test. 300 IN MX 10 first.order.test.",
				"first.order.test. 300 IN A 127.0.0.2",
			},
			needs2: true,
			to:     "ann@order.test",
			check:  []check{failed(false, "second.order.test")},
			calls:  0,
		},
		{
			name:    "not an address",
			records: []string{"crew.test. 300 IN A 127.0.0.1"},
			to:      "crew.test",
			check:   []check{failed(true, "not an address")},
			calls:   0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sink := mailtest.NewSink(t)
			if tt.needs2 {
				requireRefused(t, net.JoinHostPort("127.0.0.2", itoa(portOf(t, sink.Addr))))
			}
			var calls atomic.Int32
			sink.Reject = func(mailtest.Message) error {
				n := calls.Add(1)
				if tt.reject != nil {
					return tt.reject(n)
				}
				return nil
			}
			dns := newDNS(t, tt.records...)
			dns.Fail(tt.servfail)
			mx := delivery.NewMX(delivery.NewResolver(dns.Addr), portOf(t, sink.Addr), "crewmail.test")
			err := sendOnce(mx, from, tt.to, testMsg)
			for _, c := range tt.check {
				c(t, err, sink, calls.Load())
			}
			if got := calls.Load(); tt.calls >= 0 && got != tt.calls {
				t.Errorf("sink was offered %d messages, want %d", got, tt.calls)
			}
		})
	}
}

// TestMXOpportunisticTLS: delivery to an MX takes STARTTLS even with a certificate nobody
// vouches for (RFC 7435), and falls back to plain text when the handshake fails.
func TestMXOpportunisticTLS(t *testing.T) {
	t.Parallel()
	cert := newTestCert(t)
	srv := newTestServer(t, serverOptions{startTLS: cert.serverConfig()})
	dns := newDNS(t, "tls.test. 300 IN MX 10 mx.tls.test.", "mx.tls.test. 300 IN A 127.0.0.1")
	mx := delivery.NewMX(delivery.NewResolver(dns.Addr), portOf(t, srv.Addr), "crewmail.test")
	if err := sendOnce(mx, "crew-bounces@crew.test", "ann@tls.test", testMsg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := wantOne(t, srv, "crew-bounces@crew.test", "ann@tls.test")
	if !m.TLS {
		t.Errorf("server saw no TLS, want STARTTLS")
	}
}

// TestMXDNSRecovers: after a SERVFAIL the same transport delivers once DNS answers again, so a
// retry of a temporary failure can succeed.
func TestMXDNSRecovers(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	dns := newDNS(t, "crew.test. 300 IN MX 10 mx.crew.test.", "mx.crew.test. 300 IN A 127.0.0.1")
	mx := delivery.NewMX(delivery.NewResolver(dns.Addr), portOf(t, sink.Addr), "crewmail.test")
	dns.Fail(true)
	if err := sendOnce(mx, "crew-bounces@crew.test", "ann@crew.test", testMsg); err == nil || delivery.IsPermanent(err) {
		t.Fatalf("Send during SERVFAIL: %v, want a temporary error", err)
	}
	dns.Fail(false)
	if err := sendOnce(mx, "crew-bounces@crew.test", "ann@crew.test", testMsg); err != nil {
		t.Fatalf("Send after DNS recovered: %v", err)
	}
	if n := len(sink.Messages()); n != 1 {
		t.Errorf("sink got %d messages, want 1", n)
	}
}
