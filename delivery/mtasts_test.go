package delivery_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"crewmail/delivery"
	"crewmail/internal/mailtest"
	"crewmail/internal/metrics"
	"crewmail/internal/mtasts"
	"crewmail/store"
)

// stsPolicyClient serves policy as the MTA-STS policy of domain over HTTPS on loopback and
// returns an HTTP client that reaches it as https://mta-sts.DOMAIN/ and trusts its certificate.
func stsPolicyClient(t *testing.T, domain, policy string) *http.Client {
	t.Helper()
	cert, roots := mailtest.SelfSigned(t, []string{"mta-sts." + domain}, nil, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(policy))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// syncBuffer is a log destination safe for the transport's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMTASTS: the MX transport under each MTA-STS mode, against an MX whose certificate names
// mx.DOMAIN (the right name), or another name, or that offers no STARTTLS.
func TestMTASTS(t *testing.T) {
	t.Parallel()
	const from = "crew-bounces@crew.test"
	policy := func(mode string) string {
		return "version: STSv1\r\nmode: " + mode + "\r\nmx: *.%s\r\nmax_age: 86400\r\n"
	}
	tests := []struct {
		name      string
		policy    string // "": no _mta-sts record
		certName  string // "": no STARTTLS
		delivered bool
		tls       bool
		result    string // the RFC 8460 result type logged and counted; "" for none
	}{
		{"enforce, right name", policy(mtasts.Enforce), "mx.%s", true, true, ""},
		{"enforce, wrong certificate name", policy(mtasts.Enforce), "other.test", false, false, mtasts.ResultHostMismatch},
		{"enforce, no STARTTLS", policy(mtasts.Enforce), "", false, false, mtasts.ResultStartTLS},
		{"enforce, MX not in the policy", "version: STSv1\r\nmode: enforce\r\nmx: elsewhere.test\r\nmax_age: 86400\r\n", "mx.%s", false, false, mtasts.ResultValidation},
		{"testing, wrong certificate name", policy(mtasts.Testing), "other.test", true, true, mtasts.ResultHostMismatch},
		{"testing, no STARTTLS", policy(mtasts.Testing), "", true, false, mtasts.ResultStartTLS},
		{"no policy, wrong certificate name", "", "other.test", true, true, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			domain := "sts" + itoa(i) + ".test"
			opts := serverOptions{}
			var roots *x509.CertPool
			if tt.certName != "" {
				name := strings.ReplaceAll(tt.certName, "%s", domain)
				cert, pool := mailtest.SelfSigned(t, []string{name}, nil, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
				opts.startTLS = &tls.Config{Certificates: []tls.Certificate{cert}}
				roots = pool
			}
			srv := newTestServer(t, opts)
			records := []string{domain + ". 300 IN MX 10 mx." + domain + ".", "mx." + domain + ". 300 IN A 127.0.0.1"}
			var client *http.Client
			if tt.policy != "" {
				records = append(records, "_mta-sts."+domain+`. 300 IN TXT "v=STSv1; id=1;"`)
				client = stsPolicyClient(t, domain, strings.ReplaceAll(tt.policy, "%s", domain))
			}
			dns := newDNS(t, records...)
			resolver := delivery.NewResolver(dns.Addr)
			mx := delivery.NewMX(resolver, portOf(t, srv.Addr), "crewmail.test")
			mx.STS = mtasts.NewLookup(resolver, client)
			mx.Roots = roots
			var log syncBuffer
			mx.Log = slog.New(slog.NewTextHandler(&log, nil))

			err := sendOnce(mx, from, "ann@"+domain, testMsg)
			msgs := srv.Messages()
			if tt.delivered {
				if err != nil || len(msgs) != 1 {
					t.Fatalf("Send: %v; %d delivered, want 1", err, len(msgs))
				}
				if msgs[0].TLS != tt.tls {
					t.Errorf("delivered with TLS %v, want %v", msgs[0].TLS, tt.tls)
				}
			} else {
				if err == nil || delivery.IsPermanent(err) {
					t.Fatalf("Send: %v, want a temporary failure (retried later)", err)
				}
				if len(msgs) != 0 {
					t.Fatalf("%d delivered, want none", len(msgs))
				}
			}
			var m dto.Metric
			if err := metrics.TLSFailures.WithLabelValues(domain, tt.result).Write(&m); err != nil {
				t.Fatal(err)
			}
			got := m.GetCounter().GetValue()
			if tt.result == "" {
				if strings.Contains(log.String(), "MTA-STS") {
					t.Errorf("a TLS failure logged: %s", log.String())
				}
				return
			}
			if got != 1 {
				t.Errorf("crewmail_tls_failures_total{domain=%q,result=%q} = %v, want 1", domain, tt.result, got)
			}
			if l := log.String(); !strings.Contains(l, "MTA-STS: TLS failure") || !strings.Contains(l, "result="+tt.result) || !strings.Contains(l, "domain="+domain) {
				t.Errorf("log does not report %s for %s: %s", tt.result, domain, l)
			}
		})
	}
}

// TestMTASTSEnforceRetries: through the queue, a copy for a domain whose policy enforces
// MTA-STS and whose MX shows a certificate for another name stays in the outbox with the
// failure as its last result, is tried again on the back-off schedule, and goes out once the MX
// shows the right certificate.
func TestMTASTSEnforceRetries(t *testing.T) {
	t.Parallel()
	const domain = "enforced.test"
	wrong, roots := mailtest.SelfSigned(t, []string{"other.test"}, nil, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	right, _ := mailtest.SelfSigned(t, []string{"mx." + domain}, nil, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	var fixed atomic.Bool
	srv := newTestServer(t, serverOptions{startTLS: &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		if fixed.Load() {
			return &right, nil
		}
		return &wrong, nil
	}}})
	dns := newDNS(t, domain+". 300 IN MX 10 mx."+domain+".", "mx."+domain+". 300 IN A 127.0.0.1",
		"_mta-sts."+domain+`. 300 IN TXT "v=STSv1; id=1;"`)
	resolver := delivery.NewResolver(dns.Addr)
	mx := delivery.NewMX(resolver, portOf(t, srv.Addr), "crewmail.test")
	mx.STS = mtasts.NewLookup(resolver, stsPolicyClient(t, domain, "version: STSv1\nmode: enforce\nmx: mx."+domain+"\nmax_age: 86400\n"))
	roots.AddCert(right.Leaf) // both trusted: only the name is wrong
	mx.Roots = roots
	var log syncBuffer
	mx.Log = slog.New(slog.NewTextHandler(&log, nil))

	st := openStore(t)
	q, clk := newQueue(t, st, composeMessage, mx, delivery.Config{})
	enqueue(t, st, store.Delivery{List: "crew", Seq: 1, From: "crew-bounces@crew.test", To: "ann@" + domain, Created: t0})
	runQueue(t, q)
	rows := waitOutbox(t, st, "the copy deferred", func(rows []store.Delivery) bool {
		return len(rows) == 1 && rows[0].Attempts == 1 && !rows[0].Leased
	})
	if !strings.Contains(rows[0].LastError, "certificate") || rows[0].Due.Before(t0.Add(time.Minute)) {
		t.Errorf("deferred row: %+v", rows[0])
	}
	if !strings.Contains(log.String(), "result="+mtasts.ResultHostMismatch) {
		t.Errorf("the log does not report the mismatch: %s", log.String())
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d delivered over an unverified connection", n)
	}
	// The MX gets its right certificate; the next attempt, on schedule, delivers.
	fixed.Store(true)
	clk.Advance(rows[0].Due.Sub(t0))
	q.Wake()
	waitOutbox(t, st, "empty", empty)
	if m := srv.Messages(); len(m) != 1 || !m[0].TLS {
		t.Fatalf("after the fix: %+v", m)
	}
}
