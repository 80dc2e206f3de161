package verify

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"

	"crewmail/internal/mailtest"
)

// The test keys: RSA-2048 takes a while to generate, so once per test binary.
var (
	rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	edKey = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

// post is an ordinary message from Alice, as her MTA would send it.
const post = "From: Alice <alice@example.test>\r\n" +
	"To: Garden crew <crew@lists.example.test>\r\n" +
	"Subject: Tomatoes\r\n" +
	"Date: Wed, 25 Nov 2026 09:00:00 +0100\r\n" +
	"Message-ID: <tomatoes@example.test>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"The tomatoes are ripe.\r\n" +
	"-- \r\n" +
	"Alice\r\n"

// withFrom is post with another From field.
func withFrom(from string) string {
	return strings.Replace(post, "From: Alice <alice@example.test>", "From: "+from, 1)
}

// sign signs msg for domain with the selector's key, relaxed/relaxed, as a well-behaved MTA does.
func sign(t testing.TB, msg, domain, selector string, key crypto.Signer) string {
	t.Helper()
	var b bytes.Buffer
	err := dkim.Sign(&b, strings.NewReader(msg), &dkim.SignOptions{
		Domain:                 domain,
		Selector:               selector,
		Signer:                 key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             []string{"From", "From", "To", "Subject", "Subject", "Date", "Message-ID"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// keyRecord is the DNS record (zone syntax) publishing key at selector._domainkey.domain.
func keyRecord(selector, domain string, key crypto.Signer) string {
	var v string
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			panic(err)
		}
		v = "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	case ed25519.PublicKey:
		v = "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	}
	return txt(selector+"._domainkey."+domain, v)
}

// txt is a TXT record in zone syntax, the value split into character-strings of at most 255
// bytes as RFC 1035 §3.3 requires and DNS operators publish long records.
func txt(name, value string) string {
	var parts []string
	for len(value) > 255 {
		parts = append(parts, `"`+value[:255]+`"`)
		value = value[255:]
	}
	parts = append(parts, `"`+value+`"`)
	return fmt.Sprintf("%s. 300 IN TXT %s", name, strings.Join(parts, " "))
}

// testDNS serves mailtest.DNS's records and counts the questions it gets; names in failing are
// answered with SERVFAIL, and with truncate every UDP answer comes back truncated.
type testDNS struct {
	*mailtest.DNS
	Addr string

	mu       sync.Mutex
	queries  map[string]int
	failing  map[string]bool
	truncate bool
	tcp      int
}

func newTestDNS(t testing.TB, records ...string) *testDNS {
	t.Helper()
	d := &testDNS{DNS: &mailtest.DNS{}, queries: map[string]int{}, failing: map[string]bool{}}
	for _, r := range records {
		d.Add(t, r)
	}
	d.Addr = mailtest.ServeDNS(t, d)
	return d
}

func (d *testDNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	d.mu.Lock()
	var fail, truncate bool
	for _, q := range req.Question {
		d.queries[strings.ToLower(q.Name)+" "+dns.TypeToString[q.Qtype]]++
		fail = fail || d.failing[strings.ToLower(q.Name)]
	}
	_, isTCP := w.RemoteAddr().(*net.TCPAddr)
	if isTCP {
		d.tcp++
	}
	truncate = d.truncate && !isTCP
	d.mu.Unlock()
	switch {
	case fail:
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeServerFailure)
		_ = w.WriteMsg(m)
	case truncate:
		m := new(dns.Msg)
		m.SetReply(req)
		m.Truncated = true
		_ = w.WriteMsg(m)
	default:
		d.DNS.ServeDNS(w, req)
	}
}

// Queries is how many questions for name (with or without the final dot) and qtype ("TXT")
// the server got.
func (d *testDNS) Queries(name, qtype string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queries[dns.Fqdn(strings.ToLower(name))+" "+qtype]
}

// FailName makes questions for name answered with SERVFAIL.
func (d *testDNS) FailName(name string) {
	d.mu.Lock()
	d.failing[dns.Fqdn(strings.ToLower(name))] = true
	d.mu.Unlock()
}

// clock is a settable clock for cache expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// loopback is the address test messages come from.
var loopback = net.IPv4(127, 0, 0, 1)

// newVerifier is a Verifier asking a fresh caching resolver at addr.
func newVerifier(addr string) *Verifier {
	return &Verifier{Resolver: NewResolver(addr)}
}
