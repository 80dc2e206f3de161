// Package check owns "crewmail check": looking at what a list domain publishes in DNS and at how
// this server presents itself to others (its name's addresses and reverse DNS, its TLS
// certificate, its SMTP greeting), and saying in plain words what to publish or fix.
package check

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"blitiri.com.ar/go/spf"
)

// Level is how a finding stands.
type Level string

const (
	OK   Level = "OK"
	Warn Level = "WARN"
	Fail Level = "FAIL"
)

// Finding is one thing checked.
type Finding struct {
	Level  Level
	What   string // HOST, PTR, MX, SPF, DKIM, DMARC, TLS, SMTP
	Detail string // what was found, and what to do, in plain words
	Record string // the record to publish, when one is missing or wrong
}

// Resolver is the part of a DNS resolver the checks use: the methods the spf package needs
// (spf.DNSResolver), which *net.Resolver and verify.CachingResolver have. Errors are
// *net.DNSError, IsNotFound for a name or record type that does not exist.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

var _ spf.DNSResolver = Resolver(nil)

// Setup is what this server would publish for a domain, and how it is configured.
type Setup struct {
	Hostname string // this server's name: where MX should point
	// DKIM are the records of our keys for the domain (one per selector); none without a key.
	DKIM []DKIMRecord
	// Smarthost is the relay outbound mail leaves through ("host:port"); empty when crewmail
	// delivers to the receivers' MX hosts itself.
	Smarthost string
	// Certs are the TLS certificates configured; none means no TLS.
	Certs []Cert
	// Roots are the authorities a certificate must chain to; nil: the system's.
	Roots *x509.CertPool
	// SMTPListen is the configured SMTP listen address, whose greeting is checked; empty skips
	// the check.
	SMTPListen string
	// Timeout bounds connecting to SMTPListen and waiting for its greeting; five seconds when zero.
	Timeout time.Duration
}

// DKIMRecord is the DNS record of one of our DKIM keys: its name (SELECTOR._domainkey.DOMAIN)
// and TXT value.
type DKIMRecord struct{ Name, Value string }

// Domain checks domain and this server and returns the findings, in the order an operator
// fixes them.
func Domain(ctx context.Context, r Resolver, domain string, s Setup) []Finding {
	hostAddrs, fs := host(ctx, r, s.Hostname)
	mxFinding, mxHere := mx(ctx, r, domain, s, hostAddrs)
	fs = append(fs, mxFinding, spfRecord(ctx, r, domain, s, hostAddrs, mxHere))
	fs = append(fs, dkimKeys(ctx, r, s)...)
	fs = append(fs, dmarc(ctx, r, domain))
	fs = append(fs, certs(s, time.Now())...)
	if s.SMTPListen != "" {
		fs = append(fs, greeting(ctx, s))
	}
	return fs
}

// Failed reports whether any finding failed.
func Failed(fs []Finding) bool {
	for _, f := range fs {
		if f.Level == Fail {
			return true
		}
	}
	return false
}

// Print writes the findings for a person to read.
func Print(w io.Writer, domain string, fs []Finding) {
	fmt.Fprintf(w, "crewmail check %s\n\n", domain)
	for _, f := range fs {
		fmt.Fprintf(w, "%-4s  %-5s  %s\n", f.Level, f.What, f.Detail)
		if f.Record != "" {
			fmt.Fprintf(w, "             publish:  %s\n", f.Record)
		}
	}
}

func notFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

// mx checks that the domain's mail comes to this server: an MX host that is hostname, or a name
// with one of hostname's addresses. mxHere says whether it does.
func mx(ctx context.Context, r Resolver, domain string, s Setup, hostAddrs []net.IP) (f Finding, mxHere bool) {
	f = Finding{What: "MX"}
	want := fmt.Sprintf("%s. IN MX 10 %s.", domain, s.Hostname)
	mxs, err := r.LookupMX(ctx, domain)
	switch {
	case err != nil && !notFound(err):
		f.Level, f.Detail = Fail, fmt.Sprintf("cannot look up the MX of %s: %v", domain, err)
		return f, false
	case len(mxs) == 0:
		f.Level = Fail
		f.Detail = fmt.Sprintf("%s has no MX record, so other servers do not know where to deliver list mail", domain)
		f.Record = want
		return f, false
	}
	var hosts []string
	for _, m := range mxs {
		h := strings.TrimSuffix(m.Host, ".")
		if h == "" {
			// RFC 7505: the null MX says the domain accepts no mail at all.
			f.Level, f.Record = Fail, want
			f.Detail = fmt.Sprintf("%s publishes a null MX (RFC 7505): it says it receives no mail, so nobody can post to its lists", domain)
			return f, false
		}
		hosts = append(hosts, h)
		if strings.EqualFold(h, s.Hostname) {
			f.Level, f.Detail = OK, fmt.Sprintf("%s receives mail at %s, this server", domain, h)
			return f, true
		}
	}
	for _, h := range hosts {
		if addrs, err := r.LookupIPAddr(ctx, h); err == nil && sharesAddress(ips(addrs), hostAddrs) {
			f.Level, f.Detail = OK, fmt.Sprintf("%s receives mail at %s, which has the address of %s, this server", domain, h, s.Hostname)
			return f, true
		}
	}
	f.Level = Fail
	f.Detail = fmt.Sprintf("the MX of %s is %s, neither this server's hostname %s nor a name with its address, so list mail goes elsewhere",
		domain, strings.Join(hosts, ", "), s.Hostname)
	f.Record = want
	return f, false
}

func sharesAddress(a, b []net.IP) bool {
	for _, x := range a {
		for _, y := range b {
			if x.Equal(y) {
				return true
			}
		}
	}
	return false
}

func ips(addrs []net.IPAddr) []net.IP {
	out := make([]net.IP, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.IP)
	}
	return out
}

// txt returns the TXT strings at name that start with prefix (case-insensitive).
func txt(ctx context.Context, r Resolver, name, prefix string) ([]string, error) {
	all, err := r.LookupTXT(ctx, name)
	if err != nil && !notFound(err) {
		return nil, err
	}
	var out []string
	for _, t := range all {
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(t)), prefix) {
			out = append(out, t)
		}
	}
	return out, nil
}

// spfRecord checks that the domain has one SPF record and that it authorizes each of this
// server's addresses, evaluated as receivers do (RFC 7208 §4) through the same resolver.
func spfRecord(ctx context.Context, r Resolver, domain string, s Setup, hostAddrs []net.IP, mxHere bool) Finding {
	f := Finding{What: "SPF"}
	recs, err := txt(ctx, r, domain, "v=spf1")
	switch {
	case err != nil:
		f.Level, f.Detail = Fail, fmt.Sprintf("cannot look up the SPF record of %s: %v", domain, err)
		return f
	case len(recs) == 0:
		f.Level = Fail
		f.Detail = fmt.Sprintf("%s publishes no SPF record; list mail goes out with a return path in %s, and receivers cannot tell it comes from this server", domain, domain)
		f.Record = fmt.Sprintf("%s. IN TXT \"v=spf1 mx -all\"", domain)
		return f
	case len(recs) > 1:
		f.Level = Fail
		f.Detail = fmt.Sprintf("%s publishes %d SPF records; RFC 7208 §4.5 makes that a permanent error: merge them into one", domain, len(recs))
		return f
	}
	rec := strings.TrimSpace(recs[0])
	if len(hostAddrs) == 0 {
		f.Level, f.Detail = Warn, fmt.Sprintf("%q: whether it lets this server send cannot be told until %s has an address", rec, s.Hostname)
		return f
	}
	// The return path of list mail is in the list's domain; receivers check it from the
	// address the mail comes from, with our hostname as the HELO name.
	var refused []string
	for _, ip := range hostAddrs {
		res, err := spf.CheckHostWithSender(ip, s.Hostname, "postmaster@"+domain, spf.WithResolver(r), spf.WithContext(ctx))
		switch res {
		case spf.Pass:
		case spf.TempError:
			f.Level, f.Detail = Fail, fmt.Sprintf("cannot evaluate the SPF record of %s: %v", domain, err)
			return f
		case spf.PermError:
			f.Level = Fail
			f.Detail = fmt.Sprintf("%q cannot be evaluated (%v): receivers treat that as a permanent error (RFC 7208 §2.6.7); fix the record", rec, err)
			return f
		default:
			refused = append(refused, fmt.Sprintf("%s (%s)", ip, res))
		}
	}
	if len(refused) == 0 {
		f.Level, f.Detail = OK, fmt.Sprintf("%q lets this server (%s) send for %s", rec, joinIPs(hostAddrs), domain)
		if strings.HasSuffix(rec, "+all") || strings.HasSuffix(rec, " all") {
			f.Level, f.Detail = Warn, fmt.Sprintf("%q ends in +all: it lets anyone send as %s", rec, domain)
		}
		return f
	}
	f.Level = Fail
	f.Detail = fmt.Sprintf("%q does not let this server send for %s: %s; receivers may refuse list mail or file it as spam", rec, domain, strings.Join(refused, ", "))
	mech := "a:" + s.Hostname
	if mxHere {
		mech = "mx"
	}
	f.Record = fmt.Sprintf("%s. IN TXT %q", domain, withMechanism(rec, mech))
	if s.Smarthost != "" {
		// The receivers see the smarthost's address, not ours: whether it is authorized is
		// between the record and the relay's provider.
		f.Level = Warn
		f.Detail += fmt.Sprintf("; fine if the smarthost %s sends from addresses the record allows (its provider says what to include)", s.Smarthost)
		f.Record = ""
	}
	return f
}

// withMechanism puts mech first after the version, where it is evaluated before any "all".
func withMechanism(rec, mech string) string {
	fields := strings.Fields(rec)
	return strings.Join(append([]string{fields[0], mech}, fields[1:]...), " ")
}

func joinIPs(addrs []net.IP) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// dkimKeys checks each of our keys' records: one finding per selector.
func dkimKeys(ctx context.Context, r Resolver, s Setup) []Finding {
	if len(s.DKIM) == 0 {
		return []Finding{{What: "DKIM", Level: Fail,
			Detail: "crewmail has no DKIM key for this domain, so what the lists send is unsigned: run \"crewmail dkim keygen DOMAIN\" and publish the record it prints"}}
	}
	fs := make([]Finding, 0, len(s.DKIM))
	for _, k := range s.DKIM {
		fs = append(fs, dkimKey(ctx, r, k))
	}
	return fs
}

func dkimKey(ctx context.Context, r Resolver, k DKIMRecord) Finding {
	f := Finding{What: "DKIM"}
	recs, err := txt(ctx, r, k.Name, "v=dkim1")
	want := keyOf(k.Value)
	switch {
	case err != nil:
		f.Level, f.Detail = Fail, fmt.Sprintf("cannot look up %s: %v", k.Name, err)
	case len(recs) == 0:
		f.Level, f.Detail = Fail, fmt.Sprintf("%s is not published yet, so receivers cannot check crewmail's signatures", k.Name)
		f.Record = fmt.Sprintf("%s. IN TXT %q", k.Name, k.Value)
	case keyOf(recs[0]) != want:
		f.Level, f.Detail = Fail, fmt.Sprintf("%s holds a different key than crewmail signs with: publish crewmail's", k.Name)
		f.Record = fmt.Sprintf("%s. IN TXT %q", k.Name, k.Value)
	default:
		f.Level, f.Detail = OK, fmt.Sprintf("%s matches crewmail's key", k.Name)
	}
	return f
}

// keyOf is the p= tag of a DKIM key record, without spaces (RFC 6376 §3.6.1 allows them).
func keyOf(record string) string {
	for _, tag := range strings.Split(record, ";") {
		k, v, _ := strings.Cut(tag, "=")
		if strings.TrimSpace(k) == "p" {
			return strings.Join(strings.Fields(v), "")
		}
	}
	return ""
}

func dmarc(ctx context.Context, r Resolver, domain string) Finding {
	f := Finding{What: "DMARC"}
	recs, err := txt(ctx, r, "_dmarc."+domain, "v=dmarc1")
	switch {
	case err != nil:
		f.Level, f.Detail = Fail, fmt.Sprintf("cannot look up _dmarc.%s: %v", domain, err)
	case len(recs) == 0:
		f.Level = Warn
		f.Detail = fmt.Sprintf("_dmarc.%s has no DMARC record; large mailbox providers expect one from senders of list mail", domain)
		f.Record = fmt.Sprintf("_dmarc.%s. IN TXT \"v=DMARC1; p=none; rua=mailto:postmaster@%s\"", domain, domain)
	case len(recs) > 1:
		f.Level, f.Detail = Fail, fmt.Sprintf("_dmarc.%s has %d DMARC records; receivers then ignore them all (RFC 7489 §6.6.3)", domain, len(recs))
	default:
		f.Level, f.Detail = OK, fmt.Sprintf("%q", recs[0])
	}
	return f
}
