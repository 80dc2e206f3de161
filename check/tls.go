package check

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"time"
)

// Cert is a configured TLS certificate and the name it must cover.
type Cert struct {
	Use               string // "SMTP" or "IMAP": what it is for, as the findings say
	CertFile, KeyFile string
	Host              string // the name clients connect to
}

// renewWithin is how close to its expiry a certificate draws a warning: automated renewal
// (ACME clients renew at 30 days) should have replaced it by then.
const renewWithin = 21 * 24 * time.Hour

// certs checks each certificate; without one for SMTP, other servers deliver in the clear.
func certs(s Setup, now time.Time) []Finding {
	var fs []Finding
	smtp := false
	for _, c := range s.Certs {
		smtp = smtp || c.Use == "SMTP"
	}
	if !smtp {
		fs = append(fs, Finding{What: "TLS", Level: Warn,
			Detail: "no TLS certificate: mail other servers send here is not encrypted; set smtp.tls_cert and smtp.tls_key"})
	}
	for _, c := range s.Certs {
		fs = append(fs, cert(c, s.Roots, now))
	}
	return fs
}

func cert(c Cert, roots *x509.CertPool, now time.Time) Finding {
	f := Finding{What: "TLS"}
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		f.Level, f.Detail = Fail, fmt.Sprintf("cannot load the %s certificate: %v", c.Use, err)
		return f
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			f.Level, f.Detail = Fail, fmt.Sprintf("cannot read the %s certificate %s: %v", c.Use, c.CertFile, err)
			return f
		}
	}
	what := fmt.Sprintf("the %s certificate (%s)", c.Use, c.CertFile)
	until := leaf.NotAfter.UTC().Format("2006-01-02")
	switch {
	case now.After(leaf.NotAfter):
		f.Level, f.Detail = Fail, fmt.Sprintf("%s expired on %s: renew it", what, until)
		return f
	case now.Before(leaf.NotBefore):
		f.Level, f.Detail = Fail, fmt.Sprintf("%s is not valid before %s: check the clock", what, leaf.NotBefore.UTC().Format("2006-01-02 15:04 MST"))
		return f
	}
	if err := leaf.VerifyHostname(c.Host); err != nil {
		f.Level, f.Detail = Fail, fmt.Sprintf("%s is for %s, not %s: get one that names %s", what, names(leaf), c.Host, c.Host)
		return f
	}
	var warnings []string
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		if ic, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(ic)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now}); err != nil {
		// Servers delivering by SMTP encrypt with any certificate (RFC 7435 opportunistic
		// TLS); mail programs and MTA-STS senders insist on a trusted one.
		warnings = append(warnings, fmt.Sprintf("it is not signed by an authority others trust (%v)", err))
	}
	if left := leaf.NotAfter.Sub(now); left < renewWithin {
		warnings = append(warnings, fmt.Sprintf("it expires on %s, in %d days: renew it", until, int(left.Hours()/24)))
	}
	if len(warnings) > 0 {
		f.Level, f.Detail = Warn, fmt.Sprintf("%s covers %s, but %s", what, c.Host, strings.Join(warnings, "; and "))
		return f
	}
	f.Level, f.Detail = OK, fmt.Sprintf("%s covers %s and is valid until %s", what, c.Host, until)
	return f
}

func names(c *x509.Certificate) string {
	if len(c.DNSNames) > 0 {
		return strings.Join(c.DNSNames, ", ")
	}
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	return "no name"
}
