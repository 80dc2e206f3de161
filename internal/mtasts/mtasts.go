// Package mtasts finds out whether a mail domain requires authenticated TLS of those who send
// to it (SMTP MTA Strict Transport Security, RFC 8461): it looks up the domain's _mta-sts TXT
// record, fetches and parses its policy over HTTPS, keeps it for its max_age, and says which
// MX hosts the policy allows. It also names the RFC 8460 (TLS-RPT) result type of a failure.
package mtasts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Modes of a policy (RFC 8461 §5).
const (
	Enforce = "enforce" // deliver only over TLS verified against an MX host the policy names
	Testing = "testing" // report failures, deliver anyway
	None    = "none"    // no policy: opportunistic TLS
)

// maxAge is the longest max_age a policy may give, one year (RFC 8461 §3.2).
const maxAge = 31557600

// maxPolicyBytes bounds the policy body (RFC 8461 §3.3 suggests 64 KiB).
const maxPolicyBytes = 64 << 10

// Policy is a domain's MTA-STS policy. The zero Policy is "no policy".
type Policy struct {
	Mode   string
	MX     []string // patterns: "mx.example.com" or "*.example.com"
	MaxAge time.Duration
	ID     string // the id of the TXT record it was fetched for
}

// EffectiveMode returns the policy's mode, None for the zero Policy.
func (p Policy) EffectiveMode() string {
	if p.Mode == "" {
		return None
	}
	return p.Mode
}

// Match reports whether host may receive mail under the policy (RFC 8461 §4.1): it equals one
// of the mx patterns, or a "*." pattern covers it with exactly one more label on the left.
func (p Policy) Match(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, pat := range p.MX {
		pat = strings.ToLower(strings.TrimSuffix(pat, "."))
		if rest, ok := strings.CutPrefix(pat, "*."); ok {
			label, parent, found := strings.Cut(host, ".")
			if found && label != "" && parent == rest {
				return true
			}
			continue
		}
		if host == pat {
			return true
		}
	}
	return false
}

// Parse reads a policy file (RFC 8461 §3.2): "key: value" lines, CRLF or LF, in any order;
// version STSv1, a mode, at least one mx unless the mode is none, and max_age. Unknown keys
// are ignored (§3.2: "extension" fields).
func Parse(body []byte) (Policy, error) {
	if len(body) > maxPolicyBytes {
		return Policy{}, fmt.Errorf("policy longer than %d bytes", maxPolicyBytes)
	}
	var p Policy
	var version string
	seenAge := false
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return Policy{}, fmt.Errorf("policy line %q has no colon", line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "version":
			if version != "" {
				return Policy{}, errors.New("policy has two versions")
			}
			version = v
		case "mode":
			if p.Mode != "" {
				return Policy{}, errors.New("policy has two modes")
			}
			switch v {
			case Enforce, Testing, None:
				p.Mode = v
			default:
				return Policy{}, fmt.Errorf("policy mode %q is not enforce, testing or none", v)
			}
		case "max_age":
			if seenAge {
				return Policy{}, errors.New("policy has two max_age")
			}
			seenAge = true
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || len(v) > 10 {
				return Policy{}, fmt.Errorf("policy max_age %q is not a number of seconds", v)
			}
			p.MaxAge = time.Duration(min(n, maxAge)) * time.Second
		case "mx":
			if !validPattern(v) {
				return Policy{}, fmt.Errorf("policy mx %q is not a host name or *.domain", v)
			}
			p.MX = append(p.MX, v)
		}
	}
	switch {
	case version != "STSv1":
		return Policy{}, fmt.Errorf("policy version %q is not STSv1", version)
	case p.Mode == "":
		return Policy{}, errors.New("policy has no mode")
	case !seenAge:
		return Policy{}, errors.New("policy has no max_age")
	case len(p.MX) == 0 && p.Mode != None:
		return Policy{}, errors.New("policy names no mx")
	}
	return p, nil
}

func validPattern(s string) bool {
	s = strings.TrimPrefix(s, "*.")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// ParseRecord reads the TXT record at _mta-sts.DOMAIN (RFC 8461 §3.1): "v=STSv1; id=...;"
// and returns its id (1 to 32 letters and digits).
func ParseRecord(txt string) (id string, err error) {
	fields := strings.Split(txt, ";")
	if strings.TrimSpace(fields[0]) != "v=STSv1" {
		return "", fmt.Errorf("MTA-STS record %q does not start with v=STSv1", txt)
	}
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		if k != "id" {
			continue
		}
		if v == "" || len(v) > 32 || strings.IndexFunc(v, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
		}) >= 0 {
			return "", fmt.Errorf("MTA-STS record id %q is not 1 to 32 letters and digits", v)
		}
		return v, nil
	}
	return "", fmt.Errorf("MTA-STS record %q has no id", txt)
}

// Resolver looks up TXT records (net.Resolver does).
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Lookup finds and keeps the MTA-STS policies of domains (RFC 8461 §5: "Senders ... cache
// the policy"). Policies are kept in memory for their max_age; a restart fetches them again.
type Lookup struct {
	Resolver Resolver
	// HTTP fetches policies; it must verify certificates (RFC 8461 §3.3) and is told not to
	// follow redirects. Tests give one that trusts their certificate authority.
	HTTP *http.Client
	Now  func() time.Time
	// Recheck is how long the answer for a domain (a policy, none, or a failed fetch) stands
	// before its TXT record is looked up again: not once per message to a big provider, and a
	// policy host that does not answer is not asked again for every message.
	Recheck time.Duration

	mu      sync.Mutex
	cache   map[string]Policy // by domain
	until   map[string]time.Time
	checked map[string]time.Time // when the record was last looked up
}

// DefaultRecheck is Lookup's Recheck unless changed.
const DefaultRecheck = 5 * time.Minute

// NewLookup returns a Lookup asking resolver for records and fetching with client (nil: a
// client with the system's roots and a 30-second timeout).
func NewLookup(resolver Resolver, client *http.Client) *Lookup {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Lookup{Resolver: resolver, HTTP: client, Now: time.Now, Recheck: DefaultRecheck,
		cache: map[string]Policy{}, until: map[string]time.Time{}, checked: map[string]time.Time{}}
}

// Errors of a policy fetch, by RFC 8460 §4.3 result type.
var (
	ErrFetch   = errors.New(ResultFetchError)
	ErrInvalid = errors.New(ResultInvalid)
)

// Policy returns the policy in force for domain: the cached one while its record's id is
// unchanged (or the record cannot be read), else a newly fetched one. No record, and no policy
// cached, is the zero Policy and no error. A record whose policy cannot be fetched or parsed
// yields the cached policy, or the zero Policy with an error wrapping ErrFetch or ErrInvalid,
// to report (RFC 8461 §3.3: deliver as though there were no policy).
func (l *Lookup) Policy(ctx context.Context, domain string) (Policy, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	now := l.Now()
	l.mu.Lock()
	cached, have := l.cache[domain]
	if have && !now.Before(l.until[domain]) {
		delete(l.cache, domain)
		cached, have = Policy{}, false
	}
	if last, ok := l.checked[domain]; ok && now.Sub(last) < l.Recheck {
		l.mu.Unlock()
		return cached, nil
	}
	l.checked[domain] = now
	l.mu.Unlock()

	txts, err := l.Resolver.LookupTXT(ctx, "_mta-sts."+domain)
	var dnsErr *net.DNSError
	if err != nil && !(errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
		// A failed lookup keeps the cached policy (RFC 8461 §5.1).
		return cached, nil
	}
	var id string
	var ids int
	for _, t := range txts {
		if !strings.HasPrefix(t, "v=STSv1") {
			continue
		}
		ids++
		if id, err = ParseRecord(t); err != nil {
			return cached, nil
		}
	}
	if ids != 1 {
		// No record (or several: RFC 8461 §3.1 says treat as none): a cached policy stays in
		// force until it expires (§5.1), which is what protects against a stripped record.
		return cached, nil
	}
	if have && cached.ID == id {
		return cached, nil
	}
	p, err := l.fetch(ctx, domain)
	if err != nil {
		return cached, err
	}
	p.ID = id
	l.mu.Lock()
	l.cache[domain] = p
	l.until[domain] = now.Add(p.MaxAge)
	l.mu.Unlock()
	return p, nil
}

// fetch gets https://mta-sts.DOMAIN/.well-known/mta-sts.txt (RFC 8461 §3.3): a 200 answer, no
// redirects, text/plain, a verified certificate for mta-sts.DOMAIN.
func (l *Lookup) fetch(ctx context.Context, domain string) (Policy, error) {
	url := "https://mta-sts." + domain + "/.well-known/mta-sts.txt"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Policy{}, fmt.Errorf("%w: %s: %w", ErrFetch, url, err)
	}
	client := *l.HTTP
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		return Policy{}, fmt.Errorf("%w: %s: %w", ErrFetch, url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Policy{}, fmt.Errorf("%w: %s answered %s", ErrFetch, url, resp.Status)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/plain" {
		return Policy{}, fmt.Errorf("%w: %s is %q, not text/plain", ErrInvalid, url, resp.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPolicyBytes+1))
	if err != nil {
		return Policy{}, fmt.Errorf("%w: %s: %w", ErrFetch, url, err)
	}
	p, err := Parse(body)
	if err != nil {
		return Policy{}, fmt.Errorf("%w: %s: %w", ErrInvalid, url, err)
	}
	return p, nil
}

// RFC 8460 §4.3 result types crewmail reports.
const (
	ResultFetchError   = "sts-policy-fetch-error"
	ResultInvalid      = "sts-policy-invalid"
	ResultStartTLS     = "starttls-not-supported"
	ResultHostMismatch = "certificate-host-mismatch"
	ResultExpired      = "certificate-expired"
	ResultNotTrusted   = "certificate-not-trusted"
	ResultValidation   = "validation-failure"
)

// ResultType names the RFC 8460 result type of a failure to verify a peer's certificate, or
// of a policy fetch.
func ResultType(err error) string {
	var host x509.HostnameError
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var verr *tls.CertificateVerificationError
	switch {
	case errors.Is(err, ErrFetch):
		return ResultFetchError
	case errors.Is(err, ErrInvalid):
		return ResultInvalid
	case errors.As(err, &host):
		return ResultHostMismatch
	case errors.As(err, &unknown):
		return ResultNotTrusted
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return ResultExpired
	case errors.As(err, &verr):
		return ResultNotTrusted
	}
	return ResultValidation
}

// Verify checks a TLS peer as MTA-STS requires (RFC 8461 §4.2): a chain to roots (nil: the
// system's) and a name matching host.
func Verify(cs tls.ConnectionState, roots *x509.CertPool, host string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the server sent no certificate")
	}
	opts := x509.VerifyOptions{Roots: roots, DNSName: strings.TrimSuffix(host, "."), Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}
