// Package check owns "crewmail check": looking up what a list domain publishes in DNS (MX, SPF,
// the DKIM key record, DMARC) and saying in plain words what to publish or fix.
package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
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
	What   string // MX, SPF, DKIM, DMARC
	Detail string // what was found, and what to do, in plain words
	Record string // the record to publish, when one is missing or wrong
}

// Resolver is the part of net.Resolver the checks use.
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Setup is what this server would publish for a domain.
type Setup struct {
	Hostname string // this server's name: where MX should point
	// DKIMName and DKIMValue are the DKIM record of our key for the domain; empty without a key.
	DKIMName, DKIMValue string
}

// Domain checks domain and returns the findings, in the order an operator fixes them.
func Domain(ctx context.Context, r Resolver, domain string, s Setup) []Finding {
	return []Finding{mx(ctx, r, domain, s), spf(ctx, r, domain), dkimKey(ctx, r, s), dmarc(ctx, r, domain)}
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

func mx(ctx context.Context, r Resolver, domain string, s Setup) Finding {
	f := Finding{What: "MX"}
	mxs, err := r.LookupMX(ctx, domain)
	switch {
	case err != nil && !notFound(err):
		f.Level, f.Detail = Fail, fmt.Sprintf("cannot look up the MX of %s: %v", domain, err)
		return f
	case len(mxs) == 0:
		f.Level = Fail
		f.Detail = fmt.Sprintf("%s has no MX record, so other servers do not know where to deliver list mail", domain)
		f.Record = fmt.Sprintf("%s. IN MX 10 %s.", domain, s.Hostname)
		return f
	}
	var hosts []string
	for _, m := range mxs {
		h := strings.TrimSuffix(m.Host, ".")
		hosts = append(hosts, h)
		if strings.EqualFold(h, s.Hostname) {
			f.Level, f.Detail = OK, fmt.Sprintf("%s receives mail at %s, this server", domain, h)
			return f
		}
	}
	f.Level = Warn
	f.Detail = fmt.Sprintf("the MX of %s is %s, not this server's hostname %s: fine if that host relays to crewmail, otherwise list mail goes elsewhere",
		domain, strings.Join(hosts, ", "), s.Hostname)
	f.Record = fmt.Sprintf("%s. IN MX 10 %s.", domain, s.Hostname)
	return f
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

func spf(ctx context.Context, r Resolver, domain string) Finding {
	f := Finding{What: "SPF"}
	recs, err := txt(ctx, r, domain, "v=spf1")
	switch {
	case err != nil:
		f.Level, f.Detail = Fail, fmt.Sprintf("cannot look up the SPF record of %s: %v", domain, err)
	case len(recs) == 0:
		f.Level = Fail
		f.Detail = fmt.Sprintf("%s publishes no SPF record; list mail goes out with a return path in %s, and receivers cannot tell it comes from this server", domain, domain)
		f.Record = fmt.Sprintf("%s. IN TXT \"v=spf1 mx -all\"", domain)
	case len(recs) > 1:
		f.Level = Fail
		f.Detail = fmt.Sprintf("%s publishes %d SPF records; RFC 7208 §4.5 makes that a permanent error: merge them into one", domain, len(recs))
	default:
		f.Level, f.Detail = OK, fmt.Sprintf("%q", recs[0])
		if strings.HasSuffix(strings.TrimSpace(recs[0]), "+all") {
			f.Level, f.Detail = Warn, fmt.Sprintf("%q ends in +all: it lets anyone send as %s", recs[0], domain)
		}
	}
	return f
}

func dkimKey(ctx context.Context, r Resolver, s Setup) Finding {
	f := Finding{What: "DKIM"}
	if s.DKIMName == "" {
		f.Level = Fail
		f.Detail = "crewmail has no DKIM key for this domain, so what the lists send is unsigned: run \"crewmail dkim keygen DOMAIN\" and publish the record it prints"
		return f
	}
	recs, err := txt(ctx, r, s.DKIMName, "v=dkim1")
	want := keyOf(s.DKIMValue)
	switch {
	case err != nil:
		f.Level, f.Detail = Fail, fmt.Sprintf("cannot look up %s: %v", s.DKIMName, err)
	case len(recs) == 0:
		f.Level, f.Detail = Fail, fmt.Sprintf("%s is not published yet, so receivers cannot check crewmail's signatures", s.DKIMName)
		f.Record = fmt.Sprintf("%s. IN TXT %q", s.DKIMName, s.DKIMValue)
	case keyOf(recs[0]) != want:
		f.Level, f.Detail = Fail, fmt.Sprintf("%s holds a different key than crewmail signs with: publish crewmail's", s.DKIMName)
		f.Record = fmt.Sprintf("%s. IN TXT %q", s.DKIMName, s.DKIMValue)
	default:
		f.Level, f.Detail = OK, fmt.Sprintf("%s matches crewmail's key", s.DKIMName)
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
