package main

import (
	"crypto/tls"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"crewmail/internal/mailtest"
)

// TestSmarthostPrivateCA: a smarthost whose certificate comes from a private CA is reached by
// its name, looked up through [dns] resolver (not the system's resolver, which knows nothing of
// relay.example.test), over required STARTTLS verified against [delivery] smarthost_ca.
func TestSmarthostPrivateCA(t *testing.T) {
	t.Parallel()
	cert, _ := mailtest.SelfSigned(t, []string{"relay.example.test"}, nil, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	sink := mailtest.NewTLSSink(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	_, port, _ := net.SplitHostPort(sink.Addr)
	dir := t.TempDir()
	caFile, _ := mailtest.WriteCert(t, cert, dir)
	cfgPath := testConfig(t, dir, "relay.example.test:"+port, "")
	dns, _ := dnsOf.Load(cfgPath)
	dns.(*mailtest.DNS).Add(t, "relay.example.test. 300 IN A 127.0.0.1")
	text, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	withCA := strings.Replace(string(text), `smarthost_tls = "none"`, `smarthost_tls = "starttls"`+"\nsmarthost_ca = \""+caFile+"\"", 1)
	if err := os.WriteFile(cfgPath, []byte(withCA), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startTestServer(t, cfgPath)
	ts.mustCLI(t, "list", "create", crew, "-name", "Garden crew")
	ts.mustCLI(t, "member", "add", crew, "alice@example.test", "bob@example.test")
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "through the relay", "ca@example.test", "hello")); err != nil {
		t.Fatal(err)
	}
	for _, m := range sink.Wait(t, 2) {
		if !m.TLS {
			t.Errorf("the copy to %v went without TLS", m.To)
		}
	}

	ts.stop()

	// A file with no certificate in it is a configuration error at start.
	bad := strings.Replace(withCA, caFile, cfgPath, 1)
	if err := os.WriteFile(cfgPath, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCLI(t, cfgPath, "serve"); code != 1 || !strings.Contains(errOut, "delivery.smarthost_ca") {
		t.Errorf("serve with a smarthost_ca holding no certificate: exit %d, %s", code, errOut)
	}
}
