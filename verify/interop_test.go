package verify

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"crewmail/internal/mailtest"
)

// TestDkimpySigned: messages signed by dkimpy's dkimsign (Debian python3-dkim), a signer we did
// not write, verify; RSA and Ed25519 keys made by its dknewkey.
func TestDkimpySigned(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"dkimsign", "dknewkey"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found (apt-get install python3-dkim): %v", tool, err)
		}
	}
	dir := t.TempDir()
	run := func(stdin []byte, name string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
		}
		return out
	}
	record := func(key string) string {
		b, err := os.ReadFile(filepath.Join(dir, key+".dns"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	run(nil, "dknewkey", "rsa1")
	run(nil, "dknewkey", "--ktype", "ed25519", "ed1")
	d := mailtest.NewDNS(t,
		txt("rsa1._domainkey.example.test", record("rsa1")),
		txt("ed1._domainkey.example.test", record("ed1")),
		`_dmarc.example.test. 300 IN TXT "v=DMARC1; p=reject"`,
	)

	for _, tc := range []struct {
		name string
		args []string
		algo string
	}{
		{"rsa", []string{"rsa1", "example.test", "rsa1.key"}, "rsa-sha256"},
		{"ed25519", []string{"--signalg", "ed25519-sha256", "ed1", "example.test", "ed1.key"}, "ed25519-sha256"},
		{"rsa simple/simple", []string{"--hcanon", "simple", "--bcanon", "simple", "rsa1", "example.test", "rsa1.key"}, "rsa-sha256"},
		{"ed25519 relaxed/relaxed", []string{"--signalg", "ed25519-sha256", "--bcanon", "relaxed", "ed1", "example.test", "ed1.key"}, "ed25519-sha256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signed := run([]byte(post), "dkimsign", tc.args...)
			v := newVerifier(d.Addr)
			res, err := v.Verify(context.Background(), Input{RemoteIP: loopback, Helo: "mx.example.test", MailFrom: "alice@example.test", Message: signed})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.DKIM) != 1 || res.DKIM[0].Result != "pass" || res.DKIM[0].Algorithm != tc.algo || !res.Pass() || res.DMARC.Result != "pass" {
				t.Fatalf("%+v\n%s", res, signed)
			}
			tampered := bytes.Replace(signed, []byte("Subject: Tomatoes"), []byte("Subject: Tomatoez"), 1)
			res, err = v.Verify(context.Background(), Input{RemoteIP: loopback, Helo: "mx.example.test", MailFrom: "alice@example.test", Message: tampered})
			if err != nil || res.DKIM[0].Result != "fail" || res.Pass() {
				t.Fatalf("tampered: %+v, %v", res, err)
			}
		})
	}
}
