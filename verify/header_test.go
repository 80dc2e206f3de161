package verify

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"

	"crewmail/internal/mailtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const ourID = "mx.lists.example.test"

// golden compares got with testdata/name; -update rewrites the file.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("differs from %s (run with -update to accept):\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestHeaderGolden(t *testing.T) {
	t.Parallel()
	pass := DMARCResult{Result: "pass", Policy: "reject", Percent: 100, RecordDomain: "example.test", OrgDomain: "example.test", Aligned: "dkim", AlignedDomain: "example.test"}
	for _, tc := range []struct {
		name string
		res  Result
	}{
		{"pass", Result{
			FromDomain: "example.test",
			DKIM: []DKIMResult{
				{Domain: "example.test", Selector: "rsa1", Algorithm: "rsa-sha256", Identifier: "@example.test", Result: "pass"},
				{Domain: "example.test", Selector: "ed1", Algorithm: "ed25519-sha256", Identifier: "alice@example.test", Result: "pass"},
			},
			SPF:     SPFResult{Result: "pass", Domain: "example.test", Identity: "mailfrom"},
			HeloSPF: SPFResult{Result: "pass", Domain: "mx.example.test", Identity: "helo"},
			DMARC:   pass,
		}},
		{"stranger", Result{
			FromDomain: "example.test",
			DKIM:       []DKIMResult{{Domain: "stranger.test", Selector: "s", Algorithm: "rsa-sha256", Identifier: "@stranger.test", Result: "pass"}},
			SPF:        SPFResult{Result: "fail", Domain: "example.test", Identity: "mailfrom"},
			HeloSPF:    SPFResult{Result: "none", Domain: "mx.stranger.test", Identity: "helo"},
			DMARC:      DMARCResult{Result: "fail", Reason: "no DKIM signature or SPF pass aligned with the From domain", Policy: "quarantine", Percent: 50, RecordDomain: "example.test", OrgDomain: "example.test"},
		}},
		{"null-sender", Result{
			FromDomain: "sub.example.test",
			SPF:        SPFResult{Result: "softfail", Domain: "mx.example.test", Identity: "helo"},
			HeloSPF:    SPFResult{Result: "softfail", Domain: "mx.example.test", Identity: "helo"},
			DMARC:      DMARCResult{Result: "none", Percent: 100, OrgDomain: "example.test"},
		}},
		{"errors", Result{
			DKIM: []DKIMResult{
				{Domain: "example.test", Selector: "sel", Algorithm: "rsa-sha256", Identifier: "@example.test", Result: "temperror", Reason: "key unavailable: lookup sel._domainkey.example.test.: server answered SERVFAIL"},
				{Domain: "example.test\\\"\r\n\x00x", Selector: "a (b) \"c\"", Algorithm: "rsa-sha1", Result: "permerror", Reason: "hash algorithm too weak: sha1"},
				{Result: "permerror", Reason: "malformed signature tags: dkim: malformed header params"},
			},
			SPF:     SPFResult{Result: "permerror", Domain: "example.test", Identity: "mailfrom", Reason: "unknown field"},
			HeloSPF: SPFResult{Result: "none", Domain: "[192.0.2.1]", Identity: "helo", Reason: "the HELO name is not a domain name"},
			DMARC:   DMARCResult{Result: "permerror", Reason: "the message has 2 From fields", Percent: 100},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := tc.res.Header(ourID)
			checkHeader(t, h, max(1, len(tc.res.DKIM))+map[bool]int{true: 1, false: 2}[tc.res.SPF.Identity == "helo"]+1)
			golden(t, "authres-"+tc.name+".golden", h)
		})
	}
}

// TestHeaderGoldenVerified: the field for a message verified end to end.
func TestHeaderGoldenVerified(t *testing.T) {
	t.Parallel()
	d := mailtest.NewDNS(t,
		keyRecord("rsa1", "example.test", rsaKey()),
		keyRecord("ed1", "example.test", edKey()),
		`_dmarc.example.test. 300 IN TXT "v=DMARC1; p=reject; sp=none"`,
		`example.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"`,
	)
	msg := sign(t, sign(t, post, "example.test", "ed1", edKey()), "example.test", "rsa1", rsaKey())
	res, err := newVerifier(d.Addr).Verify(context.Background(), Input{RemoteIP: loopback, Helo: "mx.example.test", MailFrom: "alice@example.test", Message: []byte(msg)})
	if err != nil {
		t.Fatal(err)
	}
	h := res.Header(ourID)
	checkHeader(t, h, 5)
	golden(t, "authres-verified.golden", h)
}

// checkHeader checks that h is one field of n results, one per line (folded further only when
// long), lines at most 78 long, that authres reads back with our authserv-id.
func checkHeader(t *testing.T, h string, n int) {
	t.Helper()
	if !strings.HasSuffix(h, "\r\n") || strings.Count(h, "\n") != strings.Count(h, "\r\n") {
		t.Errorf("not CRLF-terminated lines: %q", h)
	}
	lines := strings.Split(strings.TrimSuffix(h, "\r\n"), "\r\n")
	for i, l := range lines {
		if len(l) > 78 {
			t.Errorf("line %d is %d long: %q", i, len(l), l)
		}
		if i > 0 && !strings.HasPrefix(l, "\t") && !strings.HasPrefix(l, " ") {
			t.Errorf("line %d does not continue the field: %q", i, l)
		}
		for _, c := range l {
			if c < ' ' && c != '\t' {
				t.Errorf("control character in %q", l)
			}
		}
	}
	nres := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "\t") {
			nres++
		}
	}
	if nres != n {
		t.Errorf("%d results, want %d:\n%s", nres, n, h)
	}
	name, value, _ := strings.Cut(strings.ReplaceAll(h, "\r\n", ""), ":")
	if name != "Authentication-Results" {
		t.Errorf("field %q", name)
	}
	id, results, err := authres.Parse(value)
	if err != nil || id != ourID || len(results) == 0 {
		t.Errorf("authres.Parse: %q, %d results, %v", id, len(results), err)
	}
	if StripOurs([]byte(h+"\r\nbody"), ourID) == nil || string(StripOurs([]byte(h+"\r\nbody"), ourID)) != "\r\nbody" {
		t.Errorf("StripOurs does not recognize our own field")
	}
}

func TestStripOurs(t *testing.T) {
	t.Parallel()
	const body = "\r\nAuthentication-Results: mx.lists.example.test; dkim=pass\r\nbody\r\n"
	for _, tc := range []struct {
		name, in, want string
	}{
		{"none", "From: a@example.test\r\n" + body, "From: a@example.test\r\n" + body},
		{"ours",
			"Authentication-Results: mx.lists.example.test; dkim=pass header.d=example.test\r\nFrom: a@example.test\r\n" + body,
			"From: a@example.test\r\n" + body},
		{"ours folded, among others",
			"Received: from a\r\n\tby b; Wed, 25 Nov 2026 09:00:00 +0100\r\n" +
				"Authentication-Results: mx.lists.example.test;\r\n\tdkim=pass header.d=example.test;\r\n  spf=pass\r\n" +
				"Authentication-Results: mx.example.test; dkim=pass\r\n" +
				"authentication-results:MX.Lists.Example.Test. 1; none\r\n" +
				"From: a@example.test\r\n" +
				"Authentication-Results : (comment (nested) \\) ) mx.lists.example.test (c); dmarc=pass\r\n" +
				"Authentication-Results:\r\n \"mx.lists.example.test\"; none\r\n" +
				"Authentication-Results: mx.lists.example.test.evil; none\r\n" +
				"Authentication-Results: evil.mx.lists.example.test; none\r\n" +
				"Authentication-Results-Not: mx.lists.example.test; none\r\n" +
				"X-Authentication-Results: mx.lists.example.test; none\r\n" +
				"Subject: Authentication-Results: mx.lists.example.test;\r\n" + body,
			"Received: from a\r\n\tby b; Wed, 25 Nov 2026 09:00:00 +0100\r\n" +
				"Authentication-Results: mx.example.test; dkim=pass\r\n" +
				"From: a@example.test\r\n" +
				"Authentication-Results: mx.lists.example.test.evil; none\r\n" +
				"Authentication-Results: evil.mx.lists.example.test; none\r\n" +
				"Authentication-Results-Not: mx.lists.example.test; none\r\n" +
				"X-Authentication-Results: mx.lists.example.test; none\r\n" +
				"Subject: Authentication-Results: mx.lists.example.test;\r\n" + body},
		{"last field, no body",
			"From: a@example.test\r\nAuthentication-Results: mx.lists.example.test; none",
			"From: a@example.test\r\n"},
		{"bare LF",
			"From: a@example.test\nAuthentication-Results: mx.lists.example.test;\n\tnone\nTo: b\n\nAuthentication-Results: mx.lists.example.test; none\n",
			"From: a@example.test\nTo: b\n\nAuthentication-Results: mx.lists.example.test; none\n"},
		{"continuation at the top is kept",
			" odd\r\nAuthentication-Results: mx.lists.example.test; none\r\n" + body,
			" odd\r\n" + body},
		{"8-bit and odd bytes elsewhere survive",
			"Subject: \xff\xfe \r\x00\r\nAuthentication-Results: mx.lists.example.test; none\r\n \r\nX: \r\n \r\n\t\r\n" + body,
			"Subject: \xff\xfe \r\x00\r\nX: \r\n \r\n\t\r\n" + body},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := string(StripOurs([]byte(tc.in), ourID))
			if got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
			if again := string(StripOurs([]byte(got), ourID)); again != got {
				t.Errorf("not idempotent: %q", again)
			}
		})
	}
}

// TestStripOursUnchanged: without a field of ours, the very same bytes come back.
func TestStripOursUnchanged(t *testing.T) {
	t.Parallel()
	in := []byte("Authentication-Results: other.test; none\r\n\r\nx")
	if out := StripOurs(in, ourID); &out[0] != &in[0] || len(out) != len(in) {
		t.Error("copied")
	}
}

// TestHeaderZeroResult: even a Result that Verify did not fill makes a well-formed field.
func TestHeaderZeroResult(t *testing.T) {
	t.Parallel()
	want := "Authentication-Results: " + ourID + ";\r\n\tdkim=none;\r\n\tdmarc=none\r\n"
	if got := (Result{}).Header(ourID); got != want {
		t.Errorf("%q, want %q", got, want)
	}
}
