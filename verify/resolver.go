package verify

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Resolver is the DNS that verification asks. Its methods are those that the spf package needs
// (spf.DNSResolver) and *net.Resolver has.
//
// Errors must be *net.DNSError, returned unwrapped: IsNotFound when the name or the record type
// does not exist, IsTemporary or IsTimeout when asking again later may succeed. go-msgauth and
// the spf package tell a temporary failure from a permanent one by type assertion, not
// errors.As: a wrapped error turns a DNS outage into a permanent verdict.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// Cache bounds. RFC 2308 §5 suggests keeping negative answers one to three hours at most; a
// day bounds how long a withdrawn key record can still verify.
const (
	maxPositiveTTL   = 24 * time.Hour
	maxNegativeTTL   = 3 * time.Hour
	defaultNegative  = 5 * time.Minute // for a negative answer without an SOA record
	maxCacheEntries  = 10000           // names come from senders: bound what they can make us hold
	defaultTimeout   = 5 * time.Second
	queryAttempts    = 2
	ednsBufferSize   = 1232 // the DNS flag day 2020 value: fits an RSA-2048 key record
	maxCNAMEHopCount = 8
)

// CachingResolver asks one DNS server (or the system's, from /etc/resolv.conf) and keeps the
// answers for their TTL: positive answers for the smallest TTL among the records used,
// NXDOMAIN and NODATA for the SOA minimum (RFC 2308 §5) or five minutes without an SOA.
// Failures (SERVFAIL, REFUSED, timeouts) are never kept. It is safe for concurrent use.
type CachingResolver struct {
	// Now is the clock that ages cache entries; time.Now when nil.
	Now func() time.Time
	// Timeout bounds each attempt of a query; five seconds when zero.
	Timeout time.Duration

	servers []string

	mu    sync.Mutex
	cache map[cacheKey]cacheEntry
}

type cacheKey struct {
	qtype uint16
	name  string
}

type cacheEntry struct {
	rrs      []dns.RR      // the answer, already narrowed to records of the asked type
	notFound *net.DNSError // or the negative answer
	expires  time.Time
}

var _ Resolver = (*CachingResolver)(nil)

// NewResolver returns a resolver asking the DNS server at addr ("host:port"; port 53 when
// omitted), or the servers of /etc/resolv.conf when addr is empty (127.0.0.1:53 when that file
// cannot be read, as the Go resolver does).
func NewResolver(addr string) *CachingResolver {
	r := &CachingResolver{cache: map[cacheKey]cacheEntry{}}
	switch {
	case addr != "":
		if _, _, err := net.SplitHostPort(addr); err != nil {
			addr = net.JoinHostPort(strings.Trim(addr, "[]"), "53")
		}
		r.servers = []string{addr}
	default:
		if conf, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil && len(conf.Servers) > 0 {
			for _, s := range conf.Servers {
				r.servers = append(r.servers, net.JoinHostPort(s, conf.Port))
			}
		} else {
			r.servers = []string{"127.0.0.1:53", "[::1]:53"}
		}
	}
	return r
}

func (r *CachingResolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// LookupTXT returns one string per TXT record, the record's character-strings concatenated
// (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
func (r *CachingResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	txts := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		var b strings.Builder
		for _, s := range rr.(*dns.TXT).Txt {
			b.WriteString(unescapeTXT(s))
		}
		txts = append(txts, b.String())
	}
	return txts, nil
}

// LookupMX returns the MX records of name.
func (r *CachingResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	rrs, err := r.query(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	mxs := make([]*net.MX, 0, len(rrs))
	for _, rr := range rrs {
		mx := rr.(*dns.MX)
		mxs = append(mxs, &net.MX{Host: mx.Mx, Pref: mx.Preference})
	}
	return mxs, nil
}

// LookupIPAddr returns the IPv4 and IPv6 addresses of host.
func (r *CachingResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IPAddr{{IP: ip}}, nil
	}
	var addrs []net.IPAddr
	var errs [2]error
	for i, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := r.query(ctx, host, qtype)
		errs[i] = err
		for _, rr := range rrs {
			switch rr := rr.(type) {
			case *dns.A:
				addrs = append(addrs, net.IPAddr{IP: rr.A})
			case *dns.AAAA:
				addrs = append(addrs, net.IPAddr{IP: rr.AAAA})
			}
		}
	}
	if len(addrs) > 0 {
		return addrs, nil
	}
	// Neither type answered: a temporary failure of either one wins over "not found", since the
	// missing addresses may be behind it.
	for _, err := range errs {
		if derr, ok := err.(*net.DNSError); ok && derr.Temporary() {
			return nil, err
		}
	}
	if errs[0] != nil {
		return nil, errs[0]
	}
	return nil, notFound(host)
}

// LookupAddr returns the names (PTR records) of an IP address.
func (r *CachingResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	rev, err := dns.ReverseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "unrecognized address", Name: addr}
	}
	rrs, err := r.query(ctx, rev, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		names = append(names, rr.(*dns.PTR).Ptr)
	}
	return names, nil
}

// query returns the records of type qtype at name, from the cache or the server.
func (r *CachingResolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	name = dns.Fqdn(strings.ToLower(name))
	if _, ok := dns.IsDomainName(name); !ok || name == "." {
		// Not a name that can be asked (an attacker's selector, say): it has no records.
		return nil, notFound(name)
	}
	key := cacheKey{qtype, name}
	now := r.now()
	r.mu.Lock()
	e, ok := r.cache[key]
	r.mu.Unlock()
	if ok && now.Before(e.expires) {
		if e.notFound != nil {
			derr := *e.notFound
			return nil, &derr
		}
		return e.rrs, nil
	}

	resp, err := r.exchange(ctx, name, qtype)
	if err != nil {
		return nil, err
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
		rrs, ttl := answer(resp, name, qtype)
		if len(rrs) > 0 {
			r.store(key, cacheEntry{rrs: rrs, expires: now.Add(min(ttl, maxPositiveTTL))})
			return rrs, nil
		}
		// NODATA: the name exists without records of this type. Like the Go resolver, say
		// "not found", which is what the spf and go-msgauth packages expect.
		derr := notFound(name)
		r.store(key, cacheEntry{notFound: derr, expires: now.Add(negativeTTL(resp))})
		return nil, derr
	case dns.RcodeNameError:
		derr := notFound(name)
		r.store(key, cacheEntry{notFound: derr, expires: now.Add(negativeTTL(resp))})
		return nil, derr
	default:
		// SERVFAIL, REFUSED and the rest: the configured server cannot answer now. Our
		// resolver, not the sender, is at fault, so never a permanent verdict.
		return nil, &net.DNSError{Err: "server answered " + dns.RcodeToString[resp.Rcode], Name: name, IsTemporary: true}
	}
}

// exchange asks the servers in turn until one answers, over UDP with EDNS0 and again over TCP
// when the answer was truncated.
func (r *CachingResolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(ednsBufferSize, false)
	var lastErr error
	for attempt := 0; attempt < queryAttempts; attempt++ {
		for _, server := range r.servers {
			c := &dns.Client{Net: "udp", Timeout: timeout, UDPSize: ednsBufferSize}
			resp, _, err := c.ExchangeContext(ctx, m, server)
			if err == nil && resp.Truncated {
				c.Net = "tcp"
				resp, _, err = c.ExchangeContext(ctx, m, server)
			}
			if err == nil {
				return resp, nil
			}
			lastErr = err
			if ctx.Err() != nil {
				return nil, &net.DNSError{Err: ctx.Err().Error(), Name: name, IsTimeout: true, IsTemporary: true}
			}
		}
	}
	derr := &net.DNSError{Err: "no answer from the DNS server", Name: name, IsTemporary: true}
	var nerr net.Error
	if errors.As(lastErr, &nerr) && nerr.Timeout() {
		derr.IsTimeout = true
	}
	return nil, derr
}

// answer returns the records of type qtype for name in resp, following CNAMEs within the answer
// section as recursive servers give them, and the smallest TTL along the way.
func answer(resp *dns.Msg, name string, qtype uint16) ([]dns.RR, time.Duration) {
	ttl := uint32(maxPositiveTTL / time.Second)
	for hop := 0; hop <= maxCNAMEHopCount; hop++ {
		var rrs []dns.RR
		next := ""
		for _, rr := range resp.Answer {
			h := rr.Header()
			if !strings.EqualFold(h.Name, name) {
				continue
			}
			switch {
			case h.Rrtype == qtype:
				rrs = append(rrs, rr)
			case h.Rrtype == dns.TypeCNAME && qtype != dns.TypeCNAME:
				next = rr.(*dns.CNAME).Target
				ttl = min(ttl, h.Ttl)
			}
		}
		if len(rrs) > 0 {
			for _, rr := range rrs {
				ttl = min(ttl, rr.Header().Ttl)
			}
			return rrs, time.Duration(ttl) * time.Second
		}
		if next == "" {
			break
		}
		name = next
	}
	return nil, 0
}

// negativeTTL is how long a negative answer may be kept: RFC 2308 §5, the smaller of the SOA
// record's TTL and its MINIMUM field.
func negativeTTL(resp *dns.Msg) time.Duration {
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(time.Duration(min(soa.Hdr.Ttl, soa.Minttl))*time.Second, maxNegativeTTL)
		}
	}
	return defaultNegative
}

func (r *CachingResolver) store(key cacheKey, e cacheEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cache == nil {
		r.cache = map[cacheKey]cacheEntry{}
	}
	if len(r.cache) >= maxCacheEntries {
		now := r.now()
		for k, old := range r.cache {
			if !now.Before(old.expires) {
				delete(r.cache, k)
			}
		}
		// Still full of live entries: forget some at random (map order) rather than grow.
		for k := range r.cache {
			if len(r.cache) < maxCacheEntries*9/10 {
				break
			}
			delete(r.cache, k)
		}
	}
	r.cache[key] = e
}

// notFound is the error for a name without records of the type asked. The errors name no server:
// their text goes into Authentication-Results, and the resolver's address is nobody's business.
func notFound(name string) *net.DNSError {
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// unescapeTXT undoes the presentation escapes (\" \\ \DDD) that miekg/dns puts in the
// character-strings it unpacks, giving back the bytes the record holds.
func unescapeTXT(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			if n <= 255 {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
