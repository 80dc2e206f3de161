package verify

import (
	"context"
	"crypto"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"

	"crewmail/internal/mailtest"
)

func TestDKIM(t *testing.T) {
	t.Parallel()
	d := mailtest.NewDNS(t,
		keyRecord("rsa1", "example.test", rsaKey()),
		keyRecord("ed1", "example.test", edKey()),
		`_dmarc.example.test. 300 IN TXT "v=DMARC1; p=reject"`,
	)
	rsaSigned := sign(t, post, "example.test", "rsa1", rsaKey())
	edSigned := sign(t, post, "example.test", "ed1", edKey())
	for _, tc := range []struct {
		name      string
		msg       string
		want      []DKIMResult
		wantDMARC string
	}{
		{"rsa-2048", rsaSigned,
			[]DKIMResult{{Domain: "example.test", Selector: "rsa1", Algorithm: "rsa-sha256", Identifier: "@example.test", Result: "pass"}}, "pass"},
		{"ed25519", edSigned,
			[]DKIMResult{{Domain: "example.test", Selector: "ed1", Algorithm: "ed25519-sha256", Identifier: "@example.test", Result: "pass"}}, "pass"},
		{"both", sign(t, edSigned, "example.test", "rsa1", rsaKey()),
			[]DKIMResult{
				{Domain: "example.test", Selector: "rsa1", Algorithm: "rsa-sha256", Identifier: "@example.test", Result: "pass"},
				{Domain: "example.test", Selector: "ed1", Algorithm: "ed25519-sha256", Identifier: "@example.test", Result: "pass"},
			}, "pass"},
		{"tampered body", strings.Replace(rsaSigned, "are ripe", "are rotten", 1),
			[]DKIMResult{{Domain: "example.test", Selector: "rsa1", Algorithm: "rsa-sha256", Identifier: "@example.test", Result: "fail", Reason: "body hash did not verify"}}, "fail"},
		{"tampered body ed25519", strings.Replace(edSigned, "are ripe", "are rotten", 1),
			[]DKIMResult{{Domain: "example.test", Selector: "ed1", Algorithm: "ed25519-sha256", Identifier: "@example.test", Result: "fail", Reason: "body hash did not verify"}}, "fail"},
		{"tampered subject", strings.Replace(rsaSigned, "Subject: Tomatoes", "Subject: Send money", 1),
			[]DKIMResult{{Domain: "example.test", Selector: "rsa1", Algorithm: "rsa-sha256", Identifier: "@example.test", Result: "fail", Reason: "signature did not verify: crypto/rsa: verification error"}}, "fail"},
		{"tampered subject ed25519", strings.Replace(edSigned, "Subject: Tomatoes", "Subject: Send money", 1),
			[]DKIMResult{{Domain: "example.test", Selector: "ed1", Algorithm: "ed25519-sha256", Identifier: "@example.test", Result: "fail", Reason: "signature did not verify: dkim: invalid Ed25519 signature"}}, "fail"},
		{"second From added", "From: Mallory <mallory@example.test>\r\n" + edSigned,
			[]DKIMResult{{Domain: "example.test", Selector: "ed1", Algorithm: "ed25519-sha256", Identifier: "@example.test", Result: "fail", Reason: "signature did not verify: dkim: invalid Ed25519 signature"}}, "permerror"},
		{"unsigned", post, nil, "fail"},
		{"key record missing", sign(t, post, "example.test", "gone", rsaKey()),
			[]DKIMResult{{Domain: "example.test", Selector: "gone", Algorithm: "rsa-sha256", Identifier: "@example.test", Result: "permerror", Reason: "no key for signature: lookup gone._domainkey.example.test.: no such host"}}, "fail"},
		{"key of another algorithm", strings.Replace(edSigned, "s=ed1", "s=rsa1", 1),
			[]DKIMResult{{Domain: "example.test", Selector: "rsa1", Algorithm: "ed25519-sha256", Identifier: "@example.test", Result: "permerror", Reason: "inappropriate key algorithm"}}, "fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newVerifier(d.Addr)
			res, err := v.Verify(context.Background(), Input{RemoteIP: loopback, Helo: "mx.example.test", MailFrom: "alice@example.test", Message: []byte(tc.msg)})
			if err != nil {
				t.Fatal(err)
			}
			if !equalDKIM(res.DKIM, tc.want) {
				t.Errorf("DKIM\n got %+v\nwant %+v", res.DKIM, tc.want)
			}
			if res.DMARC.Result != tc.wantDMARC {
				t.Errorf("DMARC %+v, want %s", res.DMARC, tc.wantDMARC)
			}
			if res.Pass() != (tc.wantDMARC == "pass") {
				t.Errorf("Pass() = %v with DMARC %s", res.Pass(), res.DMARC.Result)
			}
		})
	}
}

func equalDKIM(a, b []DKIMResult) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.Recipients, y.Recipients = nil, nil // checked by TestDKIMRecipients
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

// TestDKIMTooManySignatures: beyond the fifth, signatures are listed, not checked.
func TestDKIMTooManySignatures(t *testing.T) {
	t.Parallel()
	d := mailtest.NewDNS(t, keyRecord("ed1", "example.test", edKey()))
	msg := post
	for range 6 {
		msg = sign(t, msg, "example.test", "ed1", edKey())
	}
	res, err := newVerifier(d.Addr).Verify(context.Background(), Input{RemoteIP: loopback, Message: []byte(msg)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DKIM) != 6 {
		t.Fatalf("%d DKIM results for 6 signatures", len(res.DKIM))
	}
	for i, r := range res.DKIM {
		if want := map[bool]string{true: "pass", false: "policy"}[i < 5]; r.Result != want {
			t.Errorf("signature %d: %s, want %s", i, r.Result, want)
		}
	}
	if !res.Pass() {
		t.Error("no pass")
	}
}

// TestDKIMTemporary: a key that cannot be fetched now is temperror; when that signature was
// the only way to pass, Verify says to try again later.
func TestDKIMTemporary(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t,
		keyRecord("ed1", "example.test", edKey()),
		keyRecord("ed1", "stranger.test", edKey()),
		`_dmarc.example.test. 300 IN TXT "v=DMARC1; p=reject"`,
		`example.test. 300 IN TXT "v=spf1 ip4:192.0.2.1 -all"`,
		`bounces.stranger.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"`,
		`crew.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"`,
	)
	d.FailName("ed1._domainkey.example.test")
	d.FailName("ed1._domainkey.stranger.test")
	signed := sign(t, post, "example.test", "ed1", edKey())

	t.Run("only way to pass", func(t *testing.T) {
		res, err := newVerifier(d.Addr).Verify(context.Background(), Input{RemoteIP: loopback, MailFrom: "alice@example.test", Message: []byte(signed)})
		if !errors.Is(err, ErrTemporary) {
			t.Fatalf("error %v, want ErrTemporary", err)
		}
		if !strings.Contains(err.Error(), "ed1._domainkey.example.test") {
			t.Errorf("error %q does not name the key", err)
		}
		if len(res.DKIM) != 1 || res.DKIM[0].Result != "temperror" || res.SPF.Result != "fail" || res.Pass() {
			t.Errorf("result %+v", res)
		}
	})
	t.Run("aligned SPF passes anyway", func(t *testing.T) {
		msg := withFrom("Crew <x@crew.test>")
		msg = sign(t, msg, "example.test", "ed1", edKey())
		res, err := newVerifier(d.Addr).Verify(context.Background(), Input{RemoteIP: loopback, MailFrom: "x@crew.test", Message: []byte(msg)})
		if err != nil || !res.Pass() || res.DMARC.Aligned != "spf" {
			t.Fatalf("error %v, result %+v", err, res)
		}
	})
	t.Run("a stranger's signature cannot help", func(t *testing.T) {
		msg := sign(t, post, "stranger.test", "ed1", edKey())
		res, err := newVerifier(d.Addr).Verify(context.Background(), Input{RemoteIP: loopback, MailFrom: "x@bounces.stranger.test", Message: []byte(msg)})
		if err != nil {
			t.Fatalf("error %v for an unaligned temperror", err)
		}
		if res.DKIM[0].Result != "temperror" || res.DMARC.Result != "fail" || res.Pass() {
			t.Errorf("result %+v", res)
		}
	})
}

// TestAllDNSDown: a resolver that fails everything never gives a verdict.
func TestAllDNSDown(t *testing.T) {
	t.Parallel()
	d := mailtest.NewDNS(t, keyRecord("ed1", "example.test", edKey()))
	d.Fail(true)
	msg := sign(t, post, "example.test", "ed1", edKey())
	res, err := newVerifier(d.Addr).Verify(context.Background(), Input{RemoteIP: loopback, Helo: "mx.example.test", MailFrom: "alice@example.test", Message: []byte(msg)})
	if !errors.Is(err, ErrTemporary) {
		t.Fatalf("error %v, want ErrTemporary", err)
	}
	t.Log(err)
	if res.DMARC.Result != "temperror" || res.DKIM[0].Result != "temperror" || res.SPF.Result != "temperror" || res.HeloSPF.Result != "temperror" || res.Pass() {
		t.Errorf("result %+v", res)
	}
}

func TestSPF(t *testing.T) {
	t.Parallel()
	d := mailtest.NewDNS(t,
		`pass.test. 300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"`,
		`fail.test. 300 IN TXT "v=spf1 ip4:192.0.2.1 -all"`,
		`softfail.test. 300 IN TXT "v=spf1 ip4:192.0.2.1 ~all"`,
		`neutral.test. 300 IN TXT "v=spf1 ?all"`,
		`broken.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 bogus:x -all"`,
		`a.test. 300 IN TXT "v=spf1 a -all"`,
		`a.test. 300 IN A 127.0.0.1`,
		`mx.test. 300 IN TXT "v=spf1 mx -all"`,
		`mx.test. 300 IN MX 10 mail.mx.test.`,
		`mail.mx.test. 300 IN AAAA ::1`,
		`mail.mx.test. 300 IN A 127.0.0.1`,
		`include.test. 300 IN TXT "v=spf1 include:pass.test -all"`,
		`nospf.test. 300 IN TXT "google-site-verification=x"`,
		`helo.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"`,
	)
	for _, tc := range []struct {
		mailFrom, helo string
		ip             net.IP
		want, wantHelo SPFResult
	}{
		{"a@pass.test", "helo.test", loopback,
			SPFResult{Result: "pass", Domain: "pass.test", Identity: "mailfrom"}, SPFResult{Result: "pass", Domain: "helo.test", Identity: "helo"}},
		{"a@PASS.test", "helo.test", net.ParseIP("::1"),
			SPFResult{Result: "fail", Domain: "pass.test", Identity: "mailfrom"}, SPFResult{Result: "fail", Domain: "helo.test", Identity: "helo"}},
		{"a@fail.test", "[127.0.0.1]", loopback,
			SPFResult{Result: "fail", Domain: "fail.test", Identity: "mailfrom"}, SPFResult{Result: "none", Domain: "[127.0.0.1]", Identity: "helo", Reason: "the HELO name is not a domain name"}},
		{"a@softfail.test", "localhost", loopback,
			SPFResult{Result: "softfail", Domain: "softfail.test", Identity: "mailfrom"}, SPFResult{Result: "none", Domain: "localhost", Identity: "helo", Reason: "the HELO name is not a domain name"}},
		{"a@neutral.test", "unknown.test", loopback,
			SPFResult{Result: "neutral", Domain: "neutral.test", Identity: "mailfrom"}, SPFResult{Result: "none", Domain: "unknown.test", Identity: "helo"}},
		{"a@nowhere.test", "helo.test", loopback,
			SPFResult{Result: "none", Domain: "nowhere.test", Identity: "mailfrom"}, SPFResult{Result: "pass", Domain: "helo.test", Identity: "helo"}},
		{"a@nospf.test", "helo.test", loopback,
			SPFResult{Result: "none", Domain: "nospf.test", Identity: "mailfrom"}, SPFResult{Result: "pass", Domain: "helo.test", Identity: "helo"}},
		{"a@broken.test", "helo.test", net.IPv4(192, 0, 2, 9),
			SPFResult{Result: "permerror", Domain: "broken.test", Identity: "mailfrom", Reason: "unknown field"}, SPFResult{Result: "fail", Domain: "helo.test", Identity: "helo"}},
		{"a@a.test", "helo.test", loopback,
			SPFResult{Result: "pass", Domain: "a.test", Identity: "mailfrom"}, SPFResult{Result: "pass", Domain: "helo.test", Identity: "helo"}},
		{"a@mx.test", "helo.test", net.ParseIP("::1"),
			SPFResult{Result: "pass", Domain: "mx.test", Identity: "mailfrom"}, SPFResult{Result: "fail", Domain: "helo.test", Identity: "helo"}},
		{"a@include.test", "helo.test", loopback,
			SPFResult{Result: "pass", Domain: "include.test", Identity: "mailfrom"}, SPFResult{Result: "pass", Domain: "helo.test", Identity: "helo"}},
		// The null sender: RFC 7208 §2.4, the MAIL FROM check is the HELO check.
		{"", "helo.test", loopback,
			SPFResult{Result: "pass", Domain: "helo.test", Identity: "helo"}, SPFResult{Result: "pass", Domain: "helo.test", Identity: "helo"}},
		{"", "HELO.test.", net.IPv4(192, 0, 2, 9),
			SPFResult{Result: "fail", Domain: "helo.test", Identity: "helo"}, SPFResult{Result: "fail", Domain: "helo.test", Identity: "helo"}},
		{"<>", "fail.test", loopback,
			SPFResult{Result: "fail", Domain: "fail.test", Identity: "helo"}, SPFResult{Result: "fail", Domain: "fail.test", Identity: "helo"}},
	} {
		t.Run(tc.mailFrom+"/"+tc.helo+"/"+tc.ip.String(), func(t *testing.T) {
			t.Parallel()
			res, err := newVerifier(d.Addr).Verify(context.Background(), Input{RemoteIP: tc.ip, Helo: tc.helo, MailFrom: tc.mailFrom, Message: []byte(post)})
			if err != nil {
				t.Fatal(err)
			}
			if res.SPF != tc.want {
				t.Errorf("MAIL FROM: %+v, want %+v", res.SPF, tc.want)
			}
			if res.HeloSPF != tc.wantHelo {
				t.Errorf("HELO: %+v, want %+v", res.HeloSPF, tc.wantHelo)
			}
		})
	}
}

func TestDMARC(t *testing.T) {
	t.Parallel()
	d := mailtest.NewDNS(t,
		keyRecord("ed1", "example.test", edKey()),
		keyRecord("ed1", "mail.example.test", edKey()),
		keyRecord("rsa1", "stranger.test", rsaKey()),
		keyRecord("ed1", "strict.test", edKey()),
		keyRecord("ed1", "mail.strict.test", edKey()),
		keyRecord("ed1", "norecord.test", edKey()),
		`_dmarc.example.test. 300 IN TXT "v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.test"`,
		`example.test. 300 IN TXT "v=spf1 ip4:192.0.2.1 -all"`,
		`bounces.example.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"`,
		`_dmarc.strict.test. 300 IN TXT "v=DMARC1; p=quarantine; adkim=s; aspf=s; pct=50"`,
		`bounces.strict.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"`,
		`stranger.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"`,
		`_dmarc.none.test. 300 IN TXT "v=DMARC1; p=none"`,
		`_dmarc.broken.test. 300 IN TXT "v=DMARC1; p=bogus"`,
		`_dmarc.nop.test. 300 IN TXT "v=spf1 -all"`,
		`_dmarc.sub.org.test. 300 IN TXT "v=DMARC1; p=none"`,
		`_dmarc.org.test. 300 IN TXT "v=DMARC1; p=reject"`,
	)
	signedBy := func(from, domain, selector string, key crypto.Signer) string {
		return sign(t, withFrom(from), domain, selector, key)
	}
	for _, tc := range []struct {
		name     string
		msg      string
		mailFrom string
		want     DMARCResult
	}{
		{"aligned DKIM", signedBy("alice@example.test", "example.test", "ed1", edKey()), "alice@example.test",
			DMARCResult{Result: "pass", Policy: "reject", Percent: 100, RecordDomain: "example.test", OrgDomain: "example.test", Aligned: "dkim", AlignedDomain: "example.test"}},
		{"aligned SPF", post, "x@bounces.example.test",
			DMARCResult{Result: "pass", Policy: "reject", Percent: 100, RecordDomain: "example.test", OrgDomain: "example.test", Aligned: "spf", AlignedDomain: "bounces.example.test"}},
		{"stranger's server", signedBy("alice@example.test", "stranger.test", "rsa1", rsaKey()), "alice@example.test",
			DMARCResult{Result: "fail", Reason: "no DKIM signature or SPF pass aligned with the From domain", Policy: "reject", Percent: 100, RecordDomain: "example.test", OrgDomain: "example.test"}},
		{"stranger's envelope", post, "alice@stranger.test",
			DMARCResult{Result: "fail", Reason: "no DKIM signature or SPF pass aligned with the From domain", Policy: "reject", Percent: 100, RecordDomain: "example.test", OrgDomain: "example.test"}},
		{"relaxed: subdomain signer", signedBy("alice@example.test", "mail.example.test", "ed1", edKey()), "",
			DMARCResult{Result: "pass", Policy: "reject", Percent: 100, RecordDomain: "example.test", OrgDomain: "example.test", Aligned: "dkim", AlignedDomain: "mail.example.test"}},
		{"strict: subdomain signer", signedBy("alice@strict.test", "mail.strict.test", "ed1", edKey()), "",
			DMARCResult{Result: "fail", Reason: "no DKIM signature or SPF pass aligned with the From domain", Policy: "quarantine", Percent: 50, RecordDomain: "strict.test", OrgDomain: "strict.test", StrictDKIM: true, StrictSPF: true}},
		{"strict: same domain", signedBy("alice@strict.test", "strict.test", "ed1", edKey()), "",
			DMARCResult{Result: "pass", Policy: "quarantine", Percent: 50, RecordDomain: "strict.test", OrgDomain: "strict.test", StrictDKIM: true, StrictSPF: true, Aligned: "dkim", AlignedDomain: "strict.test"}},
		{"strict: subdomain envelope", withFrom("alice@strict.test"), "x@bounces.strict.test",
			DMARCResult{Result: "fail", Reason: "no DKIM signature or SPF pass aligned with the From domain", Policy: "quarantine", Percent: 50, RecordDomain: "strict.test", OrgDomain: "strict.test", StrictDKIM: true, StrictSPF: true}},
		{"organizational domain, sp=", signedBy("a@sub.example.test", "example.test", "ed1", edKey()), "",
			DMARCResult{Result: "pass", Policy: "quarantine", Percent: 100, RecordDomain: "example.test", OrgDomain: "example.test", Aligned: "dkim", AlignedDomain: "example.test"}},
		{"organizational domain fails", withFrom("a@deep.sub.example.test"), "a@stranger.test",
			DMARCResult{Result: "fail", Reason: "no DKIM signature or SPF pass aligned with the From domain", Policy: "quarantine", Percent: 100, RecordDomain: "example.test", OrgDomain: "example.test"}},
		{"own record before the organization's", withFrom("a@sub.org.test"), "",
			DMARCResult{Result: "fail", Reason: "no DKIM signature or SPF pass aligned with the From domain", Policy: "none", Percent: 100, RecordDomain: "sub.org.test", OrgDomain: "org.test"}},
		{"organizational domain without sp=", withFrom("a@other.org.test"), "",
			DMARCResult{Result: "fail", Reason: "no DKIM signature or SPF pass aligned with the From domain", Policy: "reject", Percent: 100, RecordDomain: "org.test", OrgDomain: "org.test"}},
		{"no record, aligned DKIM", signedBy("alice@norecord.test", "norecord.test", "ed1", edKey()), "",
			DMARCResult{Result: "none", Percent: 100, OrgDomain: "norecord.test", Aligned: "dkim", AlignedDomain: "norecord.test"}},
		{"no record, nothing aligned", withFrom("alice@norecord.test"), "",
			DMARCResult{Result: "none", Percent: 100, OrgDomain: "norecord.test"}},
		{"not a DMARC record", withFrom("alice@nop.test"), "",
			DMARCResult{Result: "none", Percent: 100, OrgDomain: "nop.test"}},
		{"p=none", withFrom("alice@none.test"), "",
			DMARCResult{Result: "fail", Reason: "no DKIM signature or SPF pass aligned with the From domain", Policy: "none", Percent: 100, RecordDomain: "none.test", OrgDomain: "none.test"}},
		{"broken record", withFrom("alice@broken.test"), "",
			DMARCResult{Result: "permerror", Reason: "invalid policy for parameter 'p'", Percent: 100, OrgDomain: "broken.test"}},
		{"two From fields", "From: b@example.test\r\n" + signedBy("alice@example.test", "example.test", "ed1", edKey()), "",
			DMARCResult{Result: "permerror", Reason: "the message has 2 From fields", Percent: 100}},
		{"two From domains", withFrom("a@example.test, b@stranger.test"), "",
			DMARCResult{Result: "permerror", Reason: "the From field names addresses in more than one domain", Percent: 100}},
		{"no From", strings.Replace(post, "From:", "X-From:", 1), "",
			DMARCResult{Result: "permerror", Reason: "the message has 0 From fields", Percent: 100}},
		{"unreadable From", withFrom("alice at example.test"), "",
			DMARCResult{Result: "permerror", Reason: "the From field cannot be parsed", Percent: 100}},
		{"IDN From", withFrom("a@BÜCHER.example.test"), "",
			DMARCResult{Result: "fail", Reason: "no DKIM signature or SPF pass aligned with the From domain", Policy: "quarantine", Percent: 100, RecordDomain: "example.test", OrgDomain: "example.test"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := newVerifier(d.Addr).Verify(context.Background(), Input{RemoteIP: loopback, Helo: "mx.stranger.test", MailFrom: tc.mailFrom, Message: []byte(tc.msg)})
			if err != nil {
				t.Fatal(err)
			}
			if res.DMARC != tc.want {
				t.Errorf("DMARC\n got %+v\nwant %+v\n(DKIM %+v, SPF %+v)", res.DMARC, tc.want, res.DKIM, res.SPF)
			}
			if res.Pass() != (tc.want.Aligned != "") {
				t.Errorf("Pass() = %v", res.Pass())
			}
			if res.DKIMAligned() != (tc.want.Aligned == "dkim") {
				t.Errorf("DKIMAligned() = %v", res.DKIMAligned())
			}
		})
	}
}

// TestDMARCTemporary: without the policy there is no decision, even with an aligned pass.
func TestDMARCTemporary(t *testing.T) {
	t.Parallel()
	d := newTestDNS(t,
		keyRecord("ed1", "example.test", edKey()),
		`_dmarc.example.test. 300 IN TXT "v=DMARC1; p=reject"`,
	)
	d.FailName("_dmarc.sub.example.test")
	msg := sign(t, withFrom("a@sub.example.test"), "example.test", "ed1", edKey())
	res, err := newVerifier(d.Addr).Verify(context.Background(), Input{RemoteIP: loopback, Message: []byte(msg)})
	if !errors.Is(err, ErrTemporary) {
		t.Fatalf("error %v, want ErrTemporary", err)
	}
	if res.DMARC.Result != "temperror" || res.DKIM[0].Result != "pass" {
		t.Errorf("result %+v", res)
	}
	if d.Queries("_dmarc.example.test", "TXT") != 0 {
		t.Error("looked up the organizational domain after a temporary failure of the From domain")
	}
}

// TestVerifyHostileInput: odd but possible messages give a result, not a crash.
func TestVerifyHostileInput(t *testing.T) {
	t.Parallel()
	d := mailtest.NewDNS(t)
	for _, msg := range []string{
		"",
		"\r\n",
		"From: a@example.test\r\nDKIM-Signature: v=1; d=example.test; s=x\r\n", // header never ends
		"DKIM-Signature: v=1; a=rsa-sha256; d=example.test; s=a b; h=from; bh=; b=\r\nFrom: a@example.test\r\n\r\n",
		"DKIM-Signature: v=1; a=rsa-sha256; d=" + strings.Repeat("x.", 200) + "test; s=a; h=from; bh=; b=\r\nFrom: a@example.test\r\n\r\n",
		"DKIM-Signature: d=a; d=b\r\nFrom: a@example.test\r\n\r\n",
		" folded first\r\nFrom: a@example.test\r\n\r\n",
		"From: \"\\\" <@>\r\n\r\n",
	} {
		res, err := newVerifier(d.Addr).Verify(context.Background(), Input{RemoteIP: loopback, Helo: "h", MailFrom: "@", Message: []byte(msg)})
		if err != nil {
			t.Errorf("%q: %v", msg, err)
		}
		if res.Pass() {
			t.Errorf("%q passes", msg)
		}
		h := res.Header("mx.lists.example.test")
		if !strings.HasPrefix(h, "Authentication-Results: mx.lists.example.test;\r\n") || !strings.HasSuffix(h, "\r\n") {
			t.Errorf("%q: header %q", msg, h)
		}
		for _, r := range res.DKIM {
			if strings.Contains(r.Reason, "internal error") {
				t.Errorf("%q: %s", msg, r.Reason)
			}
		}
	}
}
