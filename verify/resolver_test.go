package verify

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestResolverCache: answers come from the cache until their TTL runs out; failures are never
// kept.
func TestResolverCache(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t,
		`short.test. 60 IN TXT "v=spf1 -all"`,
		`long.test. 3600 IN TXT "v=spf1 -all"`,
		`nodata.test. 300 IN A 192.0.2.1`,
		`mx.test. 120 IN MX 10 mail.mx.test.`,
		`mail.mx.test. 30 IN A 192.0.2.1`,
		`mail.mx.test. 90 IN AAAA 2001:db8::1`,
	)
	clk := newClock()
	r := NewResolver(d.Addr)
	r.Now = clk.Now
	ctx := context.Background()
	lookup := func(name string) {
		t.Helper()
		if _, err := r.LookupTXT(ctx, name); err != nil && !err.(*net.DNSError).IsNotFound {
			t.Fatalf("%s: %v", name, err)
		}
	}
	expect := func(name, qtype string, n int) {
		t.Helper()
		if got := d.Queries(name, qtype); got != n {
			t.Errorf("%s %s asked %d times, want %d", name, qtype, got, n)
		}
	}

	for range 3 {
		lookup("short.test")
		lookup("LONG.test.")
		lookup("nxdomain.test")
		lookup("nodata.test")
	}
	expect("short.test", "TXT", 1)
	expect("long.test", "TXT", 1)
	expect("nxdomain.test", "TXT", 1)
	expect("nodata.test", "TXT", 1)

	clk.Advance(59 * time.Second)
	lookup("short.test")
	expect("short.test", "TXT", 1)
	clk.Advance(time.Second) // the TTL has run out
	lookup("short.test")
	lookup("long.test")
	expect("short.test", "TXT", 2)
	expect("long.test", "TXT", 1)

	// Negative answers without an SOA record are kept five minutes (one has gone by).
	clk.Advance(3*time.Minute + 59*time.Second)
	lookup("nxdomain.test")
	lookup("nodata.test")
	expect("nxdomain.test", "TXT", 1)
	expect("nodata.test", "TXT", 1)
	clk.Advance(time.Second)
	lookup("nxdomain.test")
	lookup("nodata.test")
	expect("nxdomain.test", "TXT", 2)
	expect("nodata.test", "TXT", 2)

	// SERVFAIL is not kept: once the server is back, the answer is there.
	d.FailName("fails.test")
	for range 2 {
		_, err := r.LookupTXT(ctx, "fails.test")
		if derr, ok := err.(*net.DNSError); !ok || !derr.Temporary() || derr.IsNotFound {
			t.Fatalf("SERVFAIL gave %#v, want a temporary *net.DNSError", err)
		}
	}
	expect("fails.test", "TXT", 2)

	// MX and address lookups go through the cache too, each type with its own TTL.
	for range 2 {
		mxs, err := r.LookupMX(ctx, "mx.test")
		if err != nil || len(mxs) != 1 || mxs[0].Host != "mail.mx.test." || mxs[0].Pref != 10 {
			t.Fatalf("MX %v, %v", mxs, err)
		}
		ips, err := r.LookupIPAddr(ctx, "mail.mx.test")
		if err != nil || len(ips) != 2 || !ips[0].IP.Equal(net.ParseIP("192.0.2.1")) || !ips[1].IP.Equal(net.ParseIP("2001:db8::1")) {
			t.Fatalf("addresses %v, %v", ips, err)
		}
	}
	expect("mx.test", "MX", 1)
	expect("mail.mx.test", "A", 1)
	expect("mail.mx.test", "AAAA", 1)
	clk.Advance(30 * time.Second)
	if _, err := r.LookupIPAddr(ctx, "mail.mx.test"); err != nil {
		t.Fatal(err)
	}
	expect("mail.mx.test", "A", 2)
	expect("mail.mx.test", "AAAA", 1)
}

// TestResolverVerifyWarmCache: verifying a second message from the same sender asks nothing.
func TestResolverVerifyWarmCache(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t,
		keyRecord("rsa1", "example.test", rsaKey()),
		`_dmarc.example.test. 300 IN TXT "v=DMARC1; p=reject"`,
		`example.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"`,
		`mx.example.test. 300 IN TXT "v=spf1 a -all"`,
		`mx.example.test. 300 IN A 127.0.0.1`,
	)
	v := newVerifier(d.Addr)
	in := Input{RemoteIP: loopback, Helo: "mx.example.test", MailFrom: "alice@example.test", Message: []byte(sign(t, post, "example.test", "rsa1", rsaKey()))}
	for range 3 {
		res, err := v.Verify(context.Background(), in)
		if err != nil || !res.Pass() || res.DKIM[0].Result != "pass" || res.SPF.Result != "pass" || res.HeloSPF.Result != "pass" {
			t.Fatalf("%+v, %v", res, err)
		}
	}
	for _, q := range []struct{ name, qtype string }{
		{"rsa1._domainkey.example.test", "TXT"},
		{"_dmarc.example.test", "TXT"},
		{"example.test", "TXT"},
		{"mx.example.test", "TXT"},
		{"mx.example.test", "A"},
		{"mx.example.test", "AAAA"},
	} {
		if n := d.Queries(q.name, q.qtype); n != 1 {
			t.Errorf("%s %s asked %d times", q.name, q.qtype, n)
		}
	}
}

// TestResolverLongTXT: a record of several character-strings is one string, bytes as stored.
func TestResolverLongTXT(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("0123456789", 60)
	d := newTestDNS(t,
		txt("long.test", long),
		`split.test. 300 IN TXT "v=spf1 " "ip4:192.0.2.1" " -all"`,
		`escaped.test. 300 IN TXT "a\"b\\c\010d\255"`,
		`two.test. 300 IN TXT "one"`,
		`two.test. 300 IN TXT "two"`,
	)
	r := NewResolver(d.Addr)
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"long.test", []string{long}},
		{"split.test", []string{"v=spf1 ip4:192.0.2.1 -all"}},
		{"escaped.test", []string{"a\"b\\c\nd\xff"}},
		{"two.test", []string{"one", "two"}},
	} {
		got, err := r.LookupTXT(context.Background(), tc.name)
		if err != nil || strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

// TestResolverTruncated: a truncated UDP answer is asked again over TCP.
func TestResolverTruncated(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t, keyRecord("rsa1", "example.test", rsaKey()))
	d.mu.Lock()
	d.truncate = true
	d.mu.Unlock()
	got, err := NewResolver(d.Addr).LookupTXT(context.Background(), "rsa1._domainkey.example.test")
	if err != nil || len(got) != 1 || !strings.HasPrefix(got[0], "v=DKIM1; k=rsa; p=") {
		t.Fatalf("%q, %v", got, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tcp != 1 {
		t.Errorf("%d TCP questions, want 1", d.tcp)
	}
}

// TestResolverTimeout: a server that does not answer is a temporary failure, not kept.
func TestResolverTimeout(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // reads nothing, answers nothing
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	r := NewResolver(pc.LocalAddr().String())
	r.Timeout = 20 * time.Millisecond
	_, err = r.LookupTXT(context.Background(), "example.test")
	derr, ok := err.(*net.DNSError)
	if !ok || !derr.IsTimeout || !derr.Temporary() {
		t.Fatalf("got %#v, want a timeout", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = r.LookupTXT(ctx, "example.test")
	if derr, ok := err.(*net.DNSError); !ok || !derr.Temporary() {
		t.Fatalf("canceled: got %#v, want a temporary failure", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cache) != 0 {
		t.Errorf("failures were kept: %v", r.cache)
	}
}

// TestResolverNames: what cannot be a DNS name has no records, without asking.
func TestResolverNames(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t)
	r := NewResolver(d.Addr)
	for _, name := range []string{"", ".", strings.Repeat("a", 64) + ".test", strings.Repeat("abcdefghi.", 30) + "test"} {
		_, err := r.LookupTXT(context.Background(), name)
		if derr, ok := err.(*net.DNSError); !ok || !derr.IsNotFound {
			t.Errorf("%q: %#v", name, err)
		}
	}
	if ips, err := r.LookupIPAddr(context.Background(), "192.0.2.7"); err != nil || len(ips) != 1 {
		t.Errorf("IP literal: %v, %v", ips, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.queries) != 0 {
		t.Errorf("asked %v", d.queries)
	}
}

func TestNewResolverAddress(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"192.0.2.1:5353": "192.0.2.1:5353",
		"192.0.2.1":      "192.0.2.1:53",
		"[2001:db8::1]":  "[2001:db8::1]:53",
		"ns.example":     "ns.example:53",
	} {
		if got := NewResolver(addr).servers; len(got) != 1 || got[0] != want {
			t.Errorf("%s: %v, want %s", addr, got, want)
		}
	}
	if len(NewResolver("").servers) == 0 {
		t.Error("no system servers")
	}
}

// TestAnswer: CNAMEs in the answer are followed, and the TTL is the smallest on the way.
func TestAnswer(t *testing.T) {
	t.Parallel()
	m := new(dns.Msg)
	for _, s := range []string{
		`sel._domainkey.example.test. 3600 IN CNAME sel._domainkey.provider.test.`,
		`sel._domainkey.provider.test. 600 IN CNAME key.provider.test.`,
		`key.provider.test. 1200 IN TXT "v=DKIM1; p=x"`,
		`other.test. 1 IN TXT "not this"`,
	} {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		m.Answer = append(m.Answer, rr)
	}
	rrs, ttl := answer(m, "sel._domainkey.example.test.", dns.TypeTXT)
	if len(rrs) != 1 || rrs[0].(*dns.TXT).Txt[0] != "v=DKIM1; p=x" || ttl != 600*time.Second {
		t.Errorf("%v, %v", rrs, ttl)
	}
	if rrs, _ := answer(m, "sel._domainkey.example.test.", dns.TypeMX); rrs != nil {
		t.Errorf("MX: %v", rrs)
	}
}

func TestNegativeTTL(t *testing.T) {
	t.Parallel()
	soa := func(ttl, minimum uint32) *dns.Msg {
		m := new(dns.Msg)
		m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl}, Minttl: minimum}}
		return m
	}
	for _, tc := range []struct {
		m    *dns.Msg
		want time.Duration
	}{
		{new(dns.Msg), 5 * time.Minute},
		{soa(3600, 60), time.Minute},
		{soa(30, 600), 30 * time.Second},
		{soa(86400, 86400), 3 * time.Hour},
	} {
		if got := negativeTTL(tc.m); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.m.Ns, got, tc.want)
		}
	}
}

// TestResolverCacheBound: names chosen by senders cannot grow the cache without limit.
func TestResolverCacheBound(t *testing.T) {
	t.Parallel()
	r := NewResolver("192.0.2.1:53")
	clk := newClock()
	r.Now = clk.Now
	for i := range maxCacheEntries + 10 {
		r.store(cacheKey{dns.TypeTXT, strings.Repeat("x", i%50) + string(rune('a'+i%26)) + "." + time.Duration(i).String()}, cacheEntry{expires: clk.Now().Add(time.Hour)})
	}
	if n := len(r.cache); n > maxCacheEntries {
		t.Errorf("%d entries", n)
	}
}
