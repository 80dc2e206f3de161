package delivery

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

// checkSigned verifies every DKIM signature of msg with go-msgauth against the records of dir's
// keys for domain, and returns how many verified.
func checkSigned(t testing.TB, dir, domain string, msg []byte) int {
	t.Helper()
	ok := 0
	for _, v := range verifications(t, dir, domain, msg) {
		if v.Err == nil {
			ok++
		} else {
			t.Errorf("signature of %s does not verify: %v\n%s", v.Domain, v.Err, msg)
		}
	}
	return ok
}

// verifications are go-msgauth's results for msg's signatures, with dir's keys for domain
// published.
func verifications(t testing.TB, dir, domain string, msg []byte) []*dkim.Verification {
	t.Helper()
	ks, err := Keys(dir, domain)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{LookupTXT: func(q string) ([]string, error) {
		for _, k := range ks {
			if k.Name == q {
				return []string{k.Value}, nil
			}
		}
		return nil, fmt.Errorf("no record at %s", q)
	}})
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestEachMemberSignedBodyHashedOnce: the copies of one post differ in each member's one-click
// link; each gets its own signatures (RSA and Ed25519), which verify and cover that link
// (RFC 8058 §4), while the body is hashed once for all of them.
func TestEachMemberSignedBodyHashedOnce(t *testing.T) {
	dir := t.TempDir()
	for _, algo := range []string{"rsa", "ed25519"} {
		if _, err := AddKey(dir, "lists.example.test", "", algo); err != nil {
			t.Fatal(err)
		}
	}
	s := NewSigner(dir)
	body := "Hello\r\n  with   spaces \t\r\n.dot\r\n\r\n\r\n"
	sigs := map[string]bool{}
	for i := range 3 {
		msg := fmt.Sprintf("List-Unsubscribe: <https://lists.example.test/u/member%d>,\r\n <mailto:crew+unsubscribe@lists.example.test>\r\n"+
			"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nFrom:  Alice <alice@example.test>\r\nSubject: \tA\r\n  folded subject\r\n\r\n%s", i, body)
		signed, err := s.Sign("lists.example.test", []byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		if n := checkSigned(t, dir, "lists.example.test", signed); n != 2 {
			t.Fatalf("copy %d: %d signatures verify, want 2", i, n)
		}
		sigs[string(signed[:len(signed)-len(msg)])] = true
		// Another member's link put in its place breaks the signature.
		forged := bytes.Replace(signed, fmt.Appendf(nil, "member%d", i), []byte("member9"), 1)
		for _, v := range verifications(t, dir, "lists.example.test", forged) {
			if v.Err == nil {
				t.Errorf("copy %d with another member's link still verifies", i)
			}
		}
	}
	if len(sigs) != 3 {
		t.Errorf("%d distinct signature blocks for 3 members, want 3", len(sigs))
	}
	if n := len(s.bodies.m); n != 1 {
		t.Errorf("the body was hashed %d times for 3 copies, want once", n)
	}
}

// FuzzSignedHeader: whatever a message's header fields hold (folded, with runs of spaces and
// tabs, repeated, in any case), the signature crewmail writes verifies with go-msgauth.
func FuzzSignedHeader(f *testing.F) {
	f.Add("Alice <a@example.test>", "Hi  there", "x@y", "List-Id", "body\r\n")
	f.Add("\t a@example.test \t", "a\r\n b\r\n\tc", "", "SUBJECT", "")
	f.Add("a@example.test", "", "<u>", "from", " \r\n\r\n")
	dir := f.TempDir()
	if _, err := AddKey(dir, "example.test", "s", "ed25519"); err != nil {
		f.Fatal(err)
	}
	s := NewSigner(dir)
	f.Fuzz(func(t *testing.T, from, subject, unsub, extraName, body string) {
		clean := func(v string) string {
			// A field value here is what a header can hold: no line break that does not
			// fold, and no empty folded line.
			v = strings.NewReplacer("\r\n ", "\x00", "\r\n\t", "\x01", "\r", "", "\n", "").Replace(v)
			return strings.NewReplacer("\x00", "\r\n ", "\x01", "\r\n\t").Replace(v)
		}
		name := strings.Map(func(r rune) rune {
			if r <= ' ' || r >= 0x7f || r == ':' {
				return -1
			}
			return r
		}, extraName)
		if name == "" {
			name = "X-Extra"
		}
		msg := "From:" + clean(from) + "\r\nSubject:" + clean(subject) + "\r\nList-Unsubscribe:" + clean(unsub) + "\r\n" +
			name + ": " + clean(subject) + "\r\n\r\n" + strings.ReplaceAll(strings.ReplaceAll(body, "\r", ""), "\n", "\r\n")
		if strings.Contains(msg, "\r\n \r\n") || strings.Contains(msg, "\r\n\t\r\n") || strings.Contains(msg, ":\r\n") {
			return // a folded line of only space, or a field starting with a fold: not a header
		}
		signed, err := s.Sign("example.test", []byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		checkSigned(t, dir, "example.test", signed)
	})
}
