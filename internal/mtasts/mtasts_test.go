package mtasts_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"crewmail/internal/mailtest"
	"crewmail/internal/mtasts"
	"crewmail/verify"
)

func TestParse(t *testing.T) {
	t.Parallel()
	good := "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n"
	p, err := mtasts.Parse([]byte(good))
	if err != nil || p.Mode != mtasts.Enforce || len(p.MX) != 2 || p.MaxAge != 604800*time.Second {
		t.Fatalf("Parse = %+v, %v", p, err)
	}
	// LF alone, keys in another order, an extension key, and a max_age above a year (capped).
	p, err = mtasts.Parse([]byte("mode: testing\nmx: a.example\nx-ext: whatever\nmax_age: 99999999\nversion: STSv1\n"))
	if err != nil || p.Mode != mtasts.Testing || p.MaxAge != 31557600*time.Second {
		t.Fatalf("Parse LF = %+v, %v", p, err)
	}
	if p, err := mtasts.Parse([]byte("version: STSv1\nmode: none\nmax_age: 86400\n")); err != nil || p.EffectiveMode() != mtasts.None {
		t.Fatalf("mode none = %+v, %v", p, err)
	}
	for name, bad := range map[string]string{
		"no version":     "mode: enforce\nmx: a.example\nmax_age: 1\n",
		"version 2":      "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
		"unknown mode":   "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n",
		"no mx":          "version: STSv1\nmode: enforce\nmax_age: 1\n",
		"no max_age":     "version: STSv1\nmode: enforce\nmx: a.example\n",
		"bad max_age":    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -5\n",
		"bad mx":         "version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1\n",
		"no colon":       "version: STSv1\nmode enforce\nmx: a.example\nmax_age: 1\n",
		"two modes":      "version: STSv1\nmode: enforce\nmode: testing\nmx: a.example\nmax_age: 1\n",
		"html error doc": "<html><body>Not found</body></html>",
	} {
		if p, err := mtasts.Parse([]byte(bad)); err == nil {
			t.Errorf("%s: parsed as %+v", name, p)
		}
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	p := mtasts.Policy{Mode: mtasts.Enforce, MX: []string{"mail.example.com", "*.example.net"}}
	for host, want := range map[string]bool{
		"mail.example.com":    true,
		"MAIL.example.com.":   true,
		"mx1.example.net":     true,
		"example.net":         false, // the wildcard covers exactly one label (RFC 8461 §4.1)
		"a.b.example.net":     false,
		"other.example.com":   false,
		"mail.example.com.ev": false,
	} {
		if got := p.Match(host); got != want {
			t.Errorf("Match(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestParseRecord(t *testing.T) {
	t.Parallel()
	if id, err := mtasts.ParseRecord("v=STSv1; id=20260101T0000;"); err != nil || id != "20260101T0000" {
		t.Errorf("ParseRecord = %q, %v", id, err)
	}
	for _, bad := range []string{"v=STSv2; id=1", "v=STSv1;", "v=STSv1; id=a-b", "id=1; v=STSv1"} {
		if _, err := mtasts.ParseRecord(bad); err == nil {
			t.Errorf("ParseRecord(%q) accepted", bad)
		}
	}
}

// policyServer serves body as the policy of example.test over HTTPS on loopback with a
// certificate for mta-sts.example.test, and returns a client that reaches it under that name
// and trusts the certificate, and a count of the fetches.
func policyServer(t *testing.T, body, contentType string) (*http.Client, *atomic.Int32) {
	t.Helper()
	var fetches atomic.Int32
	cert, roots := mailtest.SelfSigned(t, []string{"mta-sts.example.test"}, nil, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if r.Host != "mta-sts.example.test" || r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Write([]byte(body))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}, &fetches
}

const policyBody = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 86400\r\n"

func TestLookupFetchesAndCaches(t *testing.T) {
	t.Parallel()
	client, fetches := policyServer(t, policyBody, "text/plain; charset=utf-8")
	dns := mailtest.NewDNS(t, `_mta-sts.example.test. 300 IN TXT "v=STSv1; id=one;"`)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	l := mtasts.NewLookup(verify.NewResolver(dns.Addr), client)
	l.Now = func() time.Time { return now }
	ctx := context.Background()
	p, err := l.Policy(ctx, "Example.Test")
	if err != nil || p.Mode != mtasts.Enforce || !p.Match("mx.example.test") || p.ID != "one" {
		t.Fatalf("Policy = %+v, %v", p, err)
	}
	// Within Recheck the answer stands without a lookup: the DNS server gone changes nothing.
	l.Resolver = verify.NewResolver("127.0.0.1:1")
	if p, err := l.Policy(ctx, "example.test"); err != nil || p.Mode != mtasts.Enforce || fetches.Load() != 1 {
		t.Fatalf("lookup within Recheck: %+v, %v, %d fetches", p, err, fetches.Load())
	}
	// Later, the same id: the cached policy, no second fetch.
	l.Resolver = verify.NewResolver(dns.Addr)
	now = now.Add(mtasts.DefaultRecheck)
	if p, err := l.Policy(ctx, "example.test"); err != nil || p.Mode != mtasts.Enforce || fetches.Load() != 1 {
		t.Fatalf("second lookup: %+v, %v, %d fetches", p, err, fetches.Load())
	}
	// The record gone (stripped by an attacker, say): the cached policy holds until max_age.
	dns2 := mailtest.NewDNS(t)
	l.Resolver = verify.NewResolver(dns2.Addr)
	now = now.Add(mtasts.DefaultRecheck)
	if p, _ := l.Policy(ctx, "example.test"); p.Mode != mtasts.Enforce {
		t.Fatalf("record gone: %+v", p)
	}
	now = now.Add(86401 * time.Second)
	if p, err := l.Policy(ctx, "example.test"); err != nil || p.EffectiveMode() != mtasts.None {
		t.Fatalf("after max_age with no record: %+v, %v", p, err)
	}
	// A new id fetches again.
	now = now.Add(mtasts.DefaultRecheck)
	l.Resolver = verify.NewResolver(mailtest.NewDNS(t, `_mta-sts.example.test. 300 IN TXT "v=STSv1; id=two;"`).Addr)
	if p, err := l.Policy(ctx, "example.test"); err != nil || p.ID != "two" || fetches.Load() != 2 {
		t.Fatalf("new id: %+v, %v, %d fetches", p, err, fetches.Load())
	}
}

func TestLookupFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	record := `_mta-sts.example.test. 300 IN TXT "v=STSv1; id=one;"`
	// No record: no policy, no error.
	l := mtasts.NewLookup(verify.NewResolver(mailtest.NewDNS(t).Addr), nil)
	if p, err := l.Policy(ctx, "example.test"); err != nil || p.EffectiveMode() != mtasts.None {
		t.Errorf("no record: %+v, %v", p, err)
	}
	// A record, but the policy is served as HTML, or is not a policy: sts-policy-invalid.
	for name, srv := range map[string][2]string{
		"text/html":    {policyBody, "text/html"},
		"not a policy": {"hello", "text/plain"},
	} {
		client, _ := policyServer(t, srv[0], srv[1])
		l := mtasts.NewLookup(verify.NewResolver(mailtest.NewDNS(t, record).Addr), client)
		p, err := l.Policy(ctx, "example.test")
		if !errors.Is(err, mtasts.ErrInvalid) || mtasts.ResultType(err) != mtasts.ResultInvalid || p.EffectiveMode() != mtasts.None {
			t.Errorf("%s: %+v, %v", name, p, err)
		}
	}
	// A certificate the client does not trust: sts-policy-fetch-error.
	client, _ := policyServer(t, policyBody, "text/plain")
	client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{}
	l = mtasts.NewLookup(verify.NewResolver(mailtest.NewDNS(t, record).Addr), client)
	if p, err := l.Policy(ctx, "example.test"); !errors.Is(err, mtasts.ErrFetch) || mtasts.ResultType(err) != mtasts.ResultFetchError || p.EffectiveMode() != mtasts.None {
		t.Errorf("untrusted certificate: %+v, %v", p, err)
	}
	// A failed fetch is not tried again for every message: within Recheck, no error and no
	// policy, without asking.
	if p, err := l.Policy(ctx, "example.test"); err != nil || p.EffectiveMode() != mtasts.None {
		t.Errorf("right after a failed fetch: %+v, %v", p, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(policyBody))
	f.Add([]byte("version: STSv1\nmode: testing\nmx: *.example.net\nmx: a.example\nmax_age: 31557600\n"))
	f.Add([]byte("version: STSv1\nmode: none\nmax_age: 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := mtasts.Parse(b)
		if err != nil {
			return
		}
		if p.Mode != mtasts.None && len(p.MX) == 0 {
			t.Fatalf("a %s policy without mx: %+v", p.Mode, p)
		}
		if p.MaxAge < 0 || p.MaxAge > 31557600*time.Second {
			t.Fatalf("max_age %v out of range", p.MaxAge)
		}
		for _, mx := range p.MX {
			p.Match(mx)
		}
	})
}

func FuzzParseRecord(f *testing.F) {
	f.Add("v=STSv1; id=20260101T0000;")
	f.Add("v=STSv1;id=a")
	f.Fuzz(func(t *testing.T, s string) {
		if id, err := mtasts.ParseRecord(s); err == nil && (id == "" || len(id) > 32) {
			t.Fatalf("id %q accepted", id)
		}
	})
}
