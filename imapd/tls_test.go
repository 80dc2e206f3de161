package imapd

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"crewmail/internal/mailtest"
)

func tlsConfigs(t *testing.T) (server, client *tls.Config) {
	cert, pool := mailtest.NewCert(t)
	return &tls.Config{Certificates: []tls.Certificate{cert}}, &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

// readArchive logs in as alice over c and checks the archive arrives intact.
func readArchive(t *testing.T, c *imapclient.Client) {
	t.Helper()
	if err := c.Login(alice, passwords[alice]).Wait(); err != nil {
		t.Fatalf("LOGIN: %v", err)
	}
	if _, err := c.Select(crew, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(allSeq(), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{whole}}).Collect()
	if err != nil || len(msgs) != len(crewPosts) {
		t.Fatalf("FETCH: %d messages, %v", len(msgs), err)
	}
	for i, m := range msgs {
		if !bytes.Equal(m.FindBodySection(whole), crewPosts[i]) {
			t.Errorf("message %d differs", i+1)
		}
	}
	if err := c.Logout().Wait(); err != nil {
		t.Error(err)
	}
}

func TestImplicitTLS(t *testing.T) {
	srvTLS, cliTLS := tlsConfigs(t)
	e := newEnvWith(t, envOptions{tls: srvTLS, implicitTLS: true})
	c, err := imapclient.DialTLS(e.addr, &imapclient.Options{TLSConfig: cliTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if caps.Has(imap.CapStartTLS) || caps.Has(imap.CapLoginDisabled) || !caps.Has(imap.AuthCap(sasl.Plain)) {
		t.Errorf("capabilities over TLS: %v", caps)
	}
	readArchive(t, c)
}

func TestStartTLS(t *testing.T) {
	srvTLS, cliTLS := tlsConfigs(t)
	e := newEnvWith(t, envOptions{tls: srvTLS})
	c, err := imapclient.DialStartTLS(e.addr, &imapclient.Options{TLSConfig: cliTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readArchive(t, c)
}

// TestPlaintextLoginRefusedWithoutTLS: with InsecureAuth off, no password crosses the network in
// the clear (RFC 9051 §6.2.3: LOGINDISABLED, PRIVACYREQUIRED).
func TestPlaintextLoginRefusedWithoutTLS(t *testing.T) {
	srvTLS, _ := tlsConfigs(t)
	e := newEnvWith(t, envOptions{tls: srvTLS})
	c := e.dial(t, nil)
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !caps.Has(imap.CapStartTLS) || !caps.Has(imap.CapLoginDisabled) || caps.Has(imap.AuthCap(sasl.Plain)) {
		t.Errorf("capabilities in the clear: %v", caps)
	}
	wantNo(t, "LOGIN in the clear", c.Login(alice, passwords[alice]).Wait(), imap.ResponseCodePrivacyRequired)
	rc := e.raw(t)
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + alice + "\x00" + passwords[alice]))
	if _, st := rc.cmd("AUTHENTICATE PLAIN %s", ir); !strings.HasPrefix(st, "NO [PRIVACYREQUIRED]") {
		t.Errorf("AUTHENTICATE PLAIN in the clear: %s", st)
	}
	// Without a TLS configuration at all, ServeTLS cannot start.
	plain := New(e.st, Config{})
	if err := plain.ServeTLS(nil); err == nil {
		t.Error("ServeTLS without TLS configuration worked")
	}
	if err := plain.Close(); err != nil {
		t.Error(err)
	}
}
