package delivery_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"crewmail/delivery"
)

var listCopy = []byte("List-Id: Garden crew <crew.lists.example.test>\r\nList-Post: <mailto:crew@lists.example.test>\r\n" +
	"Precedence: list\r\nX-Loop: crew@lists.example.test\r\nFrom: Alice <alice@example.test>\r\nTo: crew@lists.example.test\r\n" +
	"Subject: Tomatoes\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <t@example.test>\r\n\r\nThe tomatoes are ripe.\r\n")

// verifyWith checks msg's DKIM signatures against one published record.
func verifyWith(t *testing.T, name, value string, msg []byte) []*dkim.Verification {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{LookupTXT: func(q string) ([]string, error) {
		if q != name {
			return nil, fmt.Errorf("no record at %s", q)
		}
		return []string{value}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestSignedCopyVerifies(t *testing.T) {
	for _, algo := range []string{"rsa", "ed25519"} {
		t.Run(algo, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			name, value, err := delivery.GenerateKey(dir, "Lists.Example.Test", "sel1", algo)
			if err != nil {
				t.Fatal(err)
			}
			if name != "sel1._domainkey.lists.example.test" || !strings.HasPrefix(value, "v=DKIM1; k="+algo+"; p=") {
				t.Errorf("record %s %q", name, value)
			}
			if _, _, err := delivery.GenerateKey(dir, "lists.example.test", "sel2", algo); err == nil || !strings.Contains(err.Error(), "already has a DKIM key") {
				t.Errorf("second keygen: %v", err)
			}
			if n2, v2, err := delivery.RecordOf(dir, "lists.example.test"); err != nil || n2 != name || v2 != value {
				t.Errorf("RecordOf = %s %q %v", n2, v2, err)
			}
			s := delivery.NewSigner(dir)
			signed, err := s.Sign("lists.example.test", listCopy)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasSuffix(signed, listCopy) || !bytes.HasPrefix(signed, []byte("DKIM-Signature: ")) {
				t.Fatalf("signed copy is not the message with a signature on top:\n%s", signed)
			}
			vs := verifyWith(t, name, value, signed)
			if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "lists.example.test" {
				t.Fatalf("verification: %+v", vs[0])
			}
			sig := string(signed[:len(signed)-len(listCopy)])
			for _, want := range []string{"c=relaxed/relaxed", "s=sel1", "d=lists.example.test"} {
				if !strings.Contains(sig, want) {
					t.Errorf("signature lacks %s: %s", want, sig)
				}
			}
			// Oversigned: List-Id appears twice in h= though the message has one.
			h := strings.ToLower(strings.Join(strings.Fields(sig[strings.Index(sig, "h="):]), ""))
			if strings.Count(h, "list-id") != 2 || strings.Count(h, "from") < 2 {
				t.Errorf("h= does not oversign: %s", h)
			}
			// A List-Id added below the signature, or a changed body, breaks it.
			for what, bad := range map[string][]byte{
				"added List-Id": append([]byte("List-Id: other <other.example>\r\n"), signed...),
				"changed body":  bytes.Replace(signed, []byte("ripe"), []byte("rotten"), 1),
			} {
				if vs := verifyWith(t, name, value, bad); vs[0].Err == nil {
					t.Errorf("%s: still verifies", what)
				}
			}
			// The next member's identical copy gets the same signature without signing again.
			again, err := s.Sign("lists.example.test", listCopy)
			if err != nil || !bytes.Equal(again, signed) {
				t.Errorf("second copy signed differently: %v", err)
			}
			// Another domain without a key: unchanged.
			if out, err := s.Sign("other.example.test", listCopy); err != nil || !bytes.Equal(out, listCopy) {
				t.Errorf("domain without a key: %v\n%s", err, out)
			}
			if os.Getenv("CREWMAIL_SKIP_DKIMPY") == "" {
				dkimpyVerifies(t, name, value, signed)
			}
		})
	}
}

// dkimpyVerifies checks the signature with dkimpy, a DKIM implementation crewmail did not
// write (Debian's python3-dkim; .ci/run installs it).
func dkimpyVerifies(t *testing.T, name, value string, msg []byte) {
	t.Helper()
	if exec.Command("/usr/bin/python3", "-c", "import dkim").Run() != nil {
		t.Skip("dkimpy (Debian python3-dkim) is not installed")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "msg.eml")
	if err := os.WriteFile(file, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	script := `
import sys, dkim
name, value, path = sys.argv[1], sys.argv[2], sys.argv[3]
def dnsfunc(q, timeout=5):
    return value.encode() if q.decode().rstrip('.') == name else None
ok = dkim.verify(open(path, 'rb').read(), dnsfunc=dnsfunc)
sys.exit(0 if ok else 1)
`
	out, err := exec.Command("/usr/bin/python3", "-c", script, name, value, file).CombinedOutput()
	if err != nil {
		t.Errorf("dkimpy does not verify crewmail's signature: %v %s", err, out)
	}
}

func TestBrokenKeyFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(delivery.KeyFile(dir, "x.test"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := delivery.NewSigner(dir).Sign("x.test", listCopy); err == nil || !strings.Contains(err.Error(), "not a crewmail DKIM key") {
		t.Errorf("damaged key: %v", err)
	}
	if _, _, err := delivery.GenerateKey(dir, "y.test", "a.b", "rsa"); err == nil {
		t.Error("selector with a dot accepted")
	}
	if _, _, err := delivery.GenerateKey(dir, "y.test", "s", "dsa"); err == nil {
		t.Error("unknown algorithm accepted")
	}
}

func BenchmarkSign(b *testing.B) {
	for _, algo := range []string{"rsa", "ed25519"} {
		b.Run(algo, func(b *testing.B) {
			dir := b.TempDir()
			if _, _, err := delivery.GenerateKey(dir, "lists.example.test", "s", algo); err != nil {
				b.Fatal(err)
			}
			s := delivery.NewSigner(dir)
			body := bytes.Repeat([]byte(strings.Repeat("x", 70)+"\r\n"), 58) // about 4 KiB
			for i := 0; b.Loop(); i++ {
				// A different post each time: no signature is reused.
				msg := append(fmt.Appendf(nil, "From: a@example.test\r\nSubject: %d\r\n\r\n", i), body...)
				if _, err := s.Sign("lists.example.test", msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestTwoKeysSignTwice: a domain with an RSA key and an Ed25519 key beside it (RFC 8463 §4)
// signs every message with both, and each signature verifies on its own, with go-msgauth and
// with dkimpy.
func TestTwoKeysSignTwice(t *testing.T) {
	dir := t.TempDir()
	rsaName, rsaValue, err := delivery.GenerateKey(dir, "lists.example.test", "", "rsa")
	if err != nil {
		t.Fatal(err)
	}
	edName, edValue, err := delivery.GenerateKey(dir, "lists.example.test", "", "ed25519")
	if err != nil {
		t.Fatal(err)
	}
	if rsaName != "crewmail._domainkey.lists.example.test" || edName != "crewmail-ed25519._domainkey.lists.example.test" {
		t.Errorf("selectors: %s, %s", rsaName, edName)
	}
	if _, _, err := delivery.GenerateKey(dir, "lists.example.test", "other", "ed25519"); err == nil || !strings.Contains(err.Error(), "already has a DKIM key") {
		t.Errorf("a second Ed25519 key: %v", err)
	}
	ks, err := delivery.Keys(dir, "lists.example.test")
	if err != nil || len(ks) != 2 || ks[0].Algo != "rsa" || ks[1].Algo != "ed25519" || ks[0].Path != delivery.KeyFile(dir, "lists.example.test") {
		t.Fatalf("Keys = %+v, %v", ks, err)
	}
	signed, err := delivery.NewSigner(dir).Sign("lists.example.test", listCopy)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(signed, []byte("DKIM-Signature: ")); n != 2 {
		t.Fatalf("%d signatures, want 2:\n%s", n, signed)
	}
	records := map[string]string{rsaName: rsaValue, edName: edValue}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(signed), &dkim.VerifyOptions{LookupTXT: func(q string) ([]string, error) {
		if v, ok := records[q]; ok {
			return []string{v}, nil
		}
		return nil, fmt.Errorf("no record at %s", q)
	}})
	if err != nil || len(vs) != 2 {
		t.Fatalf("verifications: %v %v", vs, err)
	}
	for _, v := range vs {
		if v.Err != nil || v.Domain != "lists.example.test" {
			t.Errorf("verification: %+v", v)
		}
	}
	// Each signature verifies with only its own record published: neither leans on the other.
	for name, value := range records {
		ok := 0
		for _, v := range verifyWith(t, name, value, signed) {
			if v.Err == nil {
				ok++
			}
		}
		if ok != 1 {
			t.Errorf("with only %s published, %d signatures verify, want 1", name, ok)
		}
	}
	if os.Getenv("CREWMAIL_SKIP_DKIMPY") == "" {
		dkimpyVerifiesAll(t, records, signed)
	}
}

// dkimpyVerifiesAll checks every signature of msg with dkimpy.
func dkimpyVerifiesAll(t *testing.T, records map[string]string, msg []byte) {
	t.Helper()
	if exec.Command("/usr/bin/python3", "-c", "import dkim").Run() != nil {
		t.Skip("dkimpy (Debian python3-dkim) is not installed")
	}
	file := filepath.Join(t.TempDir(), "msg.eml")
	if err := os.WriteFile(file, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	script := `
import sys, dkim
recs = dict(zip(sys.argv[2::2], sys.argv[3::2]))
def dnsfunc(q, timeout=5):
    v = recs.get(q.decode().rstrip('.'))
    return v.encode() if v else None
msg = open(sys.argv[1], 'rb').read()
d = dkim.DKIM(msg)
n = len([h for h in d.headers if h[0].lower() == b'dkim-signature'])
ok = all(d.verify(idx=i, dnsfunc=dnsfunc) for i in range(n))
sys.exit(0 if ok and n == 2 else 1)
`
	args := []string{"-c", script, file}
	for n, v := range records {
		args = append(args, n, v)
	}
	if out, err := exec.Command("/usr/bin/python3", args...).CombinedOutput(); err != nil {
		t.Errorf("dkimpy does not verify both signatures: %v %s", err, out)
	}
}
