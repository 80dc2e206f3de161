package check_test

import (
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crewmail/check"
	"crewmail/internal/mailtest"
)

// writeCert writes a self-signed certificate for names, valid from notBefore to notAfter, and
// its key as PEM files, and returns a Cert for host and a pool that trusts it.
func writeCert(t *testing.T, use, host string, names []string, notBefore, notAfter time.Time) (check.Cert, *x509.CertPool) {
	t.Helper()
	cert, pool := mailtest.SelfSigned(t, names, nil, notBefore, notAfter)
	c := check.Cert{Use: use, Host: host}
	c.CertFile, c.KeyFile = mailtest.WriteCert(t, cert, t.TempDir())
	return c, pool
}

// tlsFindings are the TLS findings for s.
func tlsFindings(t *testing.T, s check.Setup) []check.Finding {
	t.Helper()
	var out []check.Finding
	for _, f := range run(t, s, server...) {
		if f.What == "TLS" {
			out = append(out, f)
		}
	}
	return out
}

func TestCertificate(t *testing.T) {
	t.Parallel()
	now := time.Now()
	day := 24 * time.Hour
	for _, tc := range []struct {
		name                string
		names               []string
		notBefore, notAfter time.Time
		untrusted           bool
		level               check.Level
		detail              string
	}{
		{"good", []string{host}, now.Add(-day), now.Add(90 * day), false, check.OK,
			"covers mx.example.test and is valid until " + now.Add(90*day).UTC().Format("2006-01-02")},
		{"wildcard", []string{"*.example.test"}, now.Add(-day), now.Add(90 * day), false, check.OK, "covers mx.example.test"},
		{"another name", []string{"www.example.test", "example.test"}, now.Add(-day), now.Add(90 * day), false, check.Fail,
			"is for www.example.test, example.test, not mx.example.test: get one that names mx.example.test"},
		{"expired", []string{host}, now.Add(-90 * day), now.Add(-day), false, check.Fail,
			"expired on " + now.Add(-day).UTC().Format("2006-01-02") + ": renew it"},
		{"not yet valid", []string{host}, now.Add(day), now.Add(90 * day), false, check.Fail, "is not valid before"},
		{"expires soon", []string{host}, now.Add(-60 * day), now.Add(10*day + time.Hour), false, check.Warn, "it expires on " +
			now.Add(10*day+time.Hour).UTC().Format("2006-01-02") + ", in 10 days: renew it"},
		{"just outside the warning", []string{host}, now.Add(-60 * day), now.Add(22 * day), false, check.OK, "valid until"},
		{"self-signed", []string{host}, now.Add(-day), now.Add(90 * day), true, check.Warn, "covers mx.example.test, but it is not signed by an authority others trust"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, pool := writeCert(t, "SMTP", host, tc.names, tc.notBefore, tc.notAfter)
			s := setup()
			s.Certs, s.Roots = []check.Cert{c}, pool
			if tc.untrusted {
				s.Roots = x509.NewCertPool()
			}
			got := tlsFindings(t, s)
			if len(got) != 1 || got[0].Level != tc.level || !strings.Contains(got[0].Detail, tc.detail) {
				t.Errorf("got %+v\nwant %s %q", got, tc.level, tc.detail)
			}
		})
	}
}

func TestNoCertificate(t *testing.T) {
	t.Parallel()
	got := tlsFindings(t, setup())
	if len(got) != 1 || got[0].Level != check.Warn || !strings.HasPrefix(got[0].Detail, "no TLS certificate: mail other servers send here is not encrypted") {
		t.Errorf("without a certificate: %+v", got)
	}
}

func TestCertificateThatDoesNotLoad(t *testing.T) {
	t.Parallel()
	now := time.Now()
	a, _ := writeCert(t, "SMTP", host, []string{host}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	b, _ := writeCert(t, "SMTP", host, []string{host}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	for name, c := range map[string]check.Cert{
		"missing file":  {Use: "SMTP", Host: host, CertFile: filepath.Join(t.TempDir(), "nothing.pem"), KeyFile: a.KeyFile},
		"another's key": {Use: "SMTP", Host: host, CertFile: a.CertFile, KeyFile: b.KeyFile},
	} {
		s := setup()
		s.Certs = []check.Cert{c}
		if got := tlsFindings(t, s); len(got) != 1 || got[0].Level != check.Fail || !strings.Contains(got[0].Detail, "cannot load the SMTP certificate") {
			t.Errorf("%s: %+v", name, got)
		}
	}
}

func TestIMAPCertificate(t *testing.T) {
	t.Parallel()
	now := time.Now()
	c, pool := writeCert(t, "IMAP", "imap.example.test", []string{host}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	s := setup()
	s.Certs, s.Roots = []check.Cert{c}, pool
	got := tlsFindings(t, s)
	// No SMTP certificate, and the IMAP one names another host.
	if len(got) != 2 || got[0].Level != check.Warn || !strings.HasPrefix(got[0].Detail, "no TLS certificate") ||
		got[1].Level != check.Fail || !strings.Contains(got[1].Detail, "the IMAP certificate") || !strings.Contains(got[1].Detail, "not imap.example.test") {
		t.Errorf("IMAP certificate for the wrong host: %+v", got)
	}
}
