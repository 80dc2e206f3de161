package verify

import (
	"context"
	"net"
	"strings"

	"blitiri.com.ar/go/spf"
	"github.com/miekg/dns"

	"crewmail/internal/mailaddr"
)

// checkSPF checks the MAIL FROM identity and the HELO identity (RFC 7208 §2.3, §2.4).
func (v *Verifier) checkSPF(ctx context.Context, in Input) (mailFrom, helo SPFResult) {
	heloDomain := strings.TrimSuffix(strings.ToLower(in.Helo), ".")
	checkHelo := func() SPFResult {
		if !isDomain(heloDomain) {
			// An address literal or a bare word: RFC 7208 §2.3 checks only domain names.
			return SPFResult{Result: "none", Domain: heloDomain, Identity: "helo", Reason: "the HELO name is not a domain name"}
		}
		return v.spf(ctx, in, heloDomain, "postmaster@"+heloDomain, "helo")
	}

	sender := strings.TrimSuffix(strings.TrimPrefix(in.MailFrom, "<"), ">")
	local, domain, ok := mailaddr.Split(sender)
	if !ok || domain == "" {
		// RFC 7208 §2.4: with the null reverse-path, the MAIL FROM check is that of
		// postmaster@<HELO name>, which is the HELO check.
		helo = checkHelo()
		return helo, helo
	}
	domain = normalizeDomain(domain)
	if strings.Contains(local, "@") {
		// A quoted local part holding "@": the spf package splits at the first one.
		local = "postmaster"
	}
	// The two checks are independent: run them side by side, so a slow DNS server costs the
	// sender one wait, not two.
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				helo = SPFResult{Result: "permerror", Domain: heloDomain, Identity: "helo", Reason: "internal error"}
			}
		}()
		helo = checkHelo()
	}()
	mailFrom = v.spf(ctx, in, domain, local+"@"+domain, "mailfrom")
	<-done
	return mailFrom, helo
}

func (v *Verifier) spf(ctx context.Context, in Input, domain, sender, identity string) SPFResult {
	res, err := spf.CheckHostWithSender(in.RemoteIP, in.Helo, sender,
		spf.WithResolver(v.resolver()), spf.WithContext(ctx))
	r := SPFResult{Result: string(res), Domain: domain, Identity: identity}
	if err != nil && (res == spf.TempError || res == spf.PermError) {
		// The spf package also returns an error with a match ("matched ip"): only
		// errors explain something.
		r.Reason = err.Error()
	}
	return r
}

// isDomain reports whether s can be a host's domain name: not an address literal, not one bare
// label.
func isDomain(s string) bool {
	if s == "" || strings.HasPrefix(s, "[") || !strings.Contains(s, ".") || net.ParseIP(s) != nil {
		return false
	}
	_, ok := dns.IsDomainName(s)
	return ok
}
