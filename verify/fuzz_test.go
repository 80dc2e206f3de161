package verify

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"net"
	"strings"
	"testing"
)

// fuzzKey signs the seed messages of FuzzVerify (testdata/fuzz/FuzzVerify), so that the fuzzer
// starts from signatures that verify.
var fuzzKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

// mapResolver answers TXT questions from a map and nothing else, without a network: fast enough
// for fuzzing.
type mapResolver map[string]string

func (m mapResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	if v, ok := m[strings.TrimSuffix(strings.ToLower(name), ".")]; ok {
		return []string{v}, nil
	}
	return nil, notFound(name)
}

func (m mapResolver) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	return nil, notFound(name)
}

func (m mapResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	return nil, notFound(host)
}

func (m mapResolver) LookupAddr(_ context.Context, addr string) ([]string, error) {
	return nil, notFound(addr)
}

func FuzzVerify(f *testing.F) {
	f.Add([]byte(post))
	// Signed, with To and Cc: the addresses a signature covers are read too.
	f.Add([]byte(sign(f, strings.Replace(post, "Subject:", "Cc: Ann <ann@example.test>, =?utf-8?q?B=C3=A9a?= <bea@example.test>\r\nSubject:", 1), "example.test", "ed1", fuzzKey)))
	v := &Verifier{Resolver: mapResolver{
		"ed1._domainkey.example.test": "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(fuzzKey.Public().(ed25519.PublicKey)),
		"_dmarc.example.test":         "v=DMARC1; p=reject; sp=quarantine",
		"example.test":                "v=spf1 ip4:127.0.0.1 -all",
	}}
	f.Fuzz(func(t *testing.T, msg []byte) {
		res, err := v.Verify(context.Background(), Input{RemoteIP: loopback, Helo: "mx.example.test", MailFrom: "alice@example.test", Message: msg})
		if err != nil {
			t.Fatalf("error without a DNS failure: %v", err)
		}
		for _, r := range res.DKIM {
			if strings.Contains(r.Reason, "internal error") {
				t.Fatalf("DKIM: %s", r.Reason)
			}
		}
		if strings.Contains(res.SPF.Reason+res.DMARC.Reason, "internal error") {
			t.Fatalf("%+v", res)
		}
		checkOneField(t, res.Header(ourID))
	})
}

// checkOneField checks that h is exactly one header field, whatever the message held: CRLF
// only between folded lines, no other control characters.
func checkOneField(t *testing.T, h string) {
	t.Helper()
	if !strings.HasPrefix(h, "Authentication-Results: "+ourID+";\r\n") || !strings.HasSuffix(h, "\r\n") {
		t.Fatalf("header %q", h)
	}
	lines := strings.Split(strings.TrimSuffix(h, "\r\n"), "\r\n")
	for i, l := range lines {
		if i > 0 && (l == "" || (l[0] != ' ' && l[0] != '\t') || strings.TrimLeft(l, " \t") == "") {
			t.Fatalf("line %d %q does not continue the field: %q", i, l, h)
		}
		for _, c := range []byte(l) {
			if c < ' ' && c != '\t' || c == 0x7f {
				t.Fatalf("control character %#x in %q", c, l)
			}
		}
	}
}

func FuzzStripOurs(f *testing.F) {
	f.Add([]byte("Authentication-Results: " + ourID + "; none\r\nFrom: a@example.test\r\n\r\nbody\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out := StripOurs(in, ourID)
		inFields, inBody := splitHeader(in)
		outFields, outBody := splitHeader(out)
		if !bytes.Equal(inBody, outBody) {
			t.Fatalf("body changed: %q → %q", inBody, outBody)
		}
		// The output's fields are the input's, in order, less some (greedy matching is
		// enough to tell a subsequence).
		j := 0
		for _, fl := range inFields {
			if j < len(outFields) && bytes.Equal(fl, outFields[j]) {
				j++
				continue
			}
			if ours, _ := claimsOurs(fl); !ours {
				t.Fatalf("removed %q, which is not ours", fl)
			}
		}
		if j != len(outFields) {
			t.Fatalf("output is not the input less whole fields:\n%q\n%q", in, out)
		}
		for _, fl := range outFields {
			if ours, sure := claimsOurs(fl); ours && sure {
				t.Fatalf("kept %q", fl)
			}
		}
		if again := StripOurs(out, ourID); !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q → %q", out, again)
		}
	})
}

// splitHeader splits a message into header fields (with their continuation lines and line
// endings) and the rest, from the empty line on. The test's own reading: a field starts at a
// line not starting with a space or tab.
func splitHeader(msg []byte) (fields [][]byte, body []byte) {
	rest := msg
	for len(rest) > 0 {
		n := bytes.IndexByte(rest, '\n') + 1
		if n == 0 {
			n = len(rest)
		}
		line := rest[:n]
		if string(line) == "\r\n" || string(line) == "\n" {
			break
		}
		if len(fields) > 0 && (line[0] == ' ' || line[0] == '\t') {
			last := fields[len(fields)-1]
			fields[len(fields)-1] = last[:len(last)+n] // last is a slice of msg: grow it over line
		} else {
			fields = append(fields, line)
		}
		rest = rest[n:]
	}
	return fields, rest
}

// claimsOurs is an independent reading of "an Authentication-Results field with our
// authserv-id". Values with comments or quotes it cannot read (sure is false); TestStripOurs
// has examples of those.
func claimsOurs(field []byte) (ours, sure bool) {
	name, value, ok := strings.Cut(string(field), ":")
	if !ok || !strings.EqualFold(strings.TrimRight(name, " \t"), "Authentication-Results") {
		return false, true
	}
	value = strings.NewReplacer("\r", "", "\n", "").Replace(value)
	if strings.ContainsAny(value, `("`) {
		return strings.Contains(strings.ToLower(value), strings.ToLower(ourID)), false
	}
	id, _, _ := strings.Cut(value, ";")
	words := strings.FieldsFunc(id, func(r rune) bool { return r == ' ' || r == '\t' })
	return len(words) > 0 && strings.EqualFold(strings.TrimSuffix(words[0], "."), ourID), true
}
