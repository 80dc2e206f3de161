package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"crewmail/delivery"
	"crewmail/internal/mailtest"
)

// TestCheckCommandReportsEachFinding runs "crewmail check" against a running server and a
// local DNS server, before and after the records are published, and after the server stops.
func TestCheckCommandReportsEachFinding(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, _ := mailtest.NewCert(t, testDomain)
	certFile, keyFile := mailtest.WriteCert(t, cert, dir)
	cfg := testConfig(t, dir, "127.0.0.1:1", fmt.Sprintf("tls_cert = %q\ntls_key = %q", certFile, keyFile))
	dns, _ := dnsOf.Load(cfg)
	ts := startTestServer(t, cfg)

	// check reads the configuration, so give it the port the server took.
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkCfg := filepath.Join(dir, "check.toml")
	text = []byte(strings.Replace(string(text), `listen = "127.0.0.1:0"`, fmt.Sprintf("listen = %q", ts.SMTPAddr), 1))
	if err := os.WriteFile(checkCfg, text, 0o600); err != nil {
		t.Fatal(err)
	}
	expect := func(stage string, wantCode int, lines ...string) {
		t.Helper()
		out, errOut, code := runCLI(t, checkCfg, "check", testDomain)
		if code != wantCode {
			t.Errorf("%s: exit %d, want %d\n%s%s", stage, code, wantCode, out, errOut)
		}
		for _, l := range lines {
			if !strings.Contains(out, l) {
				t.Errorf("%s: no %q in\n%s", stage, l, out)
			}
		}
	}

	// testDNS has the MX and the address of lists.example.test, 127.0.0.1, and nothing else.
	expect("nothing published", 1,
		"WARN  HOST   lists.example.test has the address 127.0.0.1, which other servers on the internet cannot reach",
		"WARN  PTR    127.0.0.1 has no reverse DNS (PTR record), and many receivers refuse or junk mail from such addresses: ask your hosting provider to set the reverse DNS of 127.0.0.1 to lists.example.test\n"+
			"             publish:  1.0.0.127.in-addr.arpa. IN PTR lists.example.test.\n",
		"OK    MX     lists.example.test receives mail at lists.example.test, this server",
		"FAIL  SPF    lists.example.test publishes no SPF record",
		"             publish:  lists.example.test. IN TXT \"v=spf1 mx -all\"\n",
		"FAIL  DKIM   crewmail has no DKIM key",
		"WARN  DMARC  _dmarc.lists.example.test has no DMARC record",
		"WARN  TLS    the SMTP certificate ("+certFile+") covers lists.example.test, but it is not signed by an authority others trust",
		fmt.Sprintf("OK    SMTP   %s answers \"220 lists.example.test ESMTP Service Ready\"", ts.SMTPAddr),
	)

	if _, errOut, code := runCLI(t, cfg, "dkim", "keygen", testDomain, "-algo", "ed25519"); code != 0 {
		t.Fatal(errOut)
	}
	name, value, err := delivery.RecordOf(filepath.Join(dir, "data", "dkim"), testDomain)
	if err != nil {
		t.Fatal(err)
	}
	expect("key not published", 1, "FAIL  DKIM   "+name+" is not published yet", fmt.Sprintf("publish:  %s. IN TXT %q", name, value))

	d := dns.(*mailtest.DNS)
	d.Add(t, "1.0.0.127.in-addr.arpa. 300 IN PTR lists.example.test.")
	d.Add(t, `lists.example.test. 300 IN TXT "v=spf1 mx -all"`)
	d.Add(t, fmt.Sprintf("%s. 300 IN TXT %q", name, value))
	d.Add(t, `_dmarc.lists.example.test. 300 IN TXT "v=DMARC1; p=none"`)
	expect("all published", 0,
		"OK    PTR    127.0.0.1 points back to lists.example.test",
		`OK    SPF    "v=spf1 mx -all" lets this server (127.0.0.1) send for lists.example.test`,
		"OK    DKIM   "+name+" matches crewmail's key",
		`OK    DMARC  "v=DMARC1; p=none"`,
		"OK    SMTP",
	)

	ts.stop()
	expect("server stopped", 0, "WARN  SMTP   nothing answers at "+ts.SMTPAddr+", the smtp.listen address")
}
