package verify

import (
	"context"
	"errors"

	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"
)

// dmarcLookup is the DMARC record that applies to a From domain (RFC 7489 §6.6.3).
type dmarcLookup struct {
	rec    *dmarc.Record // nil with err
	domain string        // where rec was found
	org    string        // the organizational domain of the From domain
	err    error         // dmarc.ErrNoPolicy, a dmarc.IsTempFail error, or a broken record
}

// lookupDMARC looks up _dmarc.<from>, then, when that has no record, _dmarc.<organizational
// domain> (RFC 7489 §6.6.3).
func (v *Verifier) lookupDMARC(ctx context.Context, from string) dmarcLookup {
	r := v.resolver()
	opts := &dmarc.LookupOptions{
		// Passed through unwrapped: go-msgauth only sees a temporary failure in a net.Error.
		LookupTXT: func(name string) ([]string, error) { return r.LookupTXT(ctx, name) },
	}
	l := dmarcLookup{domain: from, org: orgDomain(from)}
	l.rec, l.err = dmarc.LookupWithOptions(from, opts)
	if errors.Is(l.err, dmarc.ErrNoPolicy) && l.org != from {
		l.domain = l.org
		l.rec, l.err = dmarc.LookupWithOptions(l.org, opts)
	}
	return l
}

// evaluateDMARC decides DMARC for res from the DKIM and SPF results and the record found.
func evaluateDMARC(res Result, l dmarcLookup, fromReason string) DMARCResult {
	d := DMARCResult{Percent: 100}
	if res.FromDomain == "" {
		d.Result, d.Reason = "permerror", fromReason
		return d
	}
	d.OrgDomain = l.org
	switch {
	case l.err == nil:
		d.RecordDomain = l.domain
		d.Policy = string(l.rec.Policy)
		if l.domain != res.FromDomain && l.rec.SubdomainPolicy != "" {
			// RFC 7489 §6.3: sp= is the policy for subdomains of the organizational domain.
			d.Policy = string(l.rec.SubdomainPolicy)
		}
		if l.rec.Percent != nil {
			d.Percent = *l.rec.Percent
		}
		d.StrictDKIM = l.rec.DKIMAlignment == dmarc.AlignmentStrict
		d.StrictSPF = l.rec.SPFAlignment == dmarc.AlignmentStrict
	case errors.Is(l.err, dmarc.ErrNoPolicy):
		d.Result = "none"
	case dmarc.IsTempFail(l.err):
		// The alignment mode is unknown: assume the strict one, so that nothing passes
		// that the record might not let pass. (Verify returns ErrTemporary anyway.)
		d.Result, d.Reason = "temperror", reason(l.err)
		d.StrictDKIM, d.StrictSPF = true, true
	default:
		// A record we cannot use (say p=bogus): the default, relaxed, alignment still says
		// whether authentication aligned.
		d.Result, d.Reason = "permerror", reason(l.err)
	}

	for _, k := range res.DKIM {
		if k.Result == "pass" && aligned(k.Domain, res.FromDomain, d.StrictDKIM) {
			d.Aligned, d.AlignedDomain = "dkim", k.Domain
			break
		}
	}
	if d.Aligned == "" && res.SPF.Result == "pass" && aligned(res.SPF.Domain, res.FromDomain, d.StrictSPF) {
		d.Aligned, d.AlignedDomain = "spf", res.SPF.Domain
	}

	if d.Result == "" {
		if d.Aligned != "" {
			d.Result = "pass"
		} else {
			d.Result, d.Reason = "fail", "no DKIM signature or SPF pass aligned with the From domain"
		}
	}
	return d
}

// aligned reports whether an authenticated domain aligns with the From domain (RFC 7489 §3.1):
// strictly when they are equal, relaxed when they share their organizational domain.
func aligned(authDomain, from string, strict bool) bool {
	if authDomain == "" || from == "" {
		return false
	}
	if strict {
		return authDomain == from
	}
	return orgDomain(authDomain) == orgDomain(from)
}

// orgDomain is the organizational domain (RFC 7489 §3.2): the public suffix plus one label. A
// name that is itself a public suffix is its own.
func orgDomain(domain string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(domain)
	if err != nil {
		return domain
	}
	return org
}
