package verify

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"crewmail/internal/mailtest"
)

// TestDKIMRecipients: a passing signature reports the To and Cc addresses it covers, and only
// those its h= tag names; a signature that fails, or of a domain not aligned with From,
// proves none.
func TestDKIMRecipients(t *testing.T) {
	t.Parallel()
	d := mailtest.NewDNS(t, keyRecord("ed1", "example.test", edKey()), keyRecord("ed1", "other.test", edKey()))
	withCc := strings.Replace(post, "Subject:", "Cc: =?utf-8?q?J=C3=BCrgen?= <jurgen@example.test>, seeds@lists.example.test\r\nSubject:", 1)
	signWith := func(msg, domain string, keys ...string) string {
		var b bytes.Buffer
		err := dkim.Sign(&b, strings.NewReader(msg), &dkim.SignOptions{Domain: domain, Selector: "ed1", Signer: edKey(),
			HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed, HeaderKeys: keys})
		if err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name string
		msg  string
		want []string
	}{
		{"to signed", sign(t, post, "example.test", "ed1", edKey()), []string{"crew@lists.example.test"}},
		{"to and cc signed", signWith(withCc, "example.test", "From", "To", "Cc", "Subject"), []string{"crew@lists.example.test", "jurgen@example.test", "seeds@lists.example.test"}},
		{"cc not signed", signWith(withCc, "example.test", "From", "To", "Subject"), []string{"crew@lists.example.test"}},
		{"neither signed", signWith(withCc, "example.test", "From", "Subject"), nil},
		{"tampered", strings.Replace(signWith(withCc, "example.test", "From", "To", "Cc"), "ripe", "rotten", 1), nil},
		{"not aligned", signWith(withCc, "other.test", "From", "To", "Cc"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := newVerifier(d.Addr).Verify(context.Background(), Input{RemoteIP: loopback, Helo: "mx.example.test", MailFrom: "x@elsewhere.test", Message: []byte(tc.msg)})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.DKIMRecipients(); !slices.Equal(got, tc.want) {
				t.Errorf("DKIMRecipients() = %q, want %q (DKIM %+v)", got, tc.want, res.DKIM)
			}
		})
	}
}

// TestSPFAligned: the SPF domain that passed aligned with From is known also when an aligned
// DKIM signature passed too (DMARC then names DKIM), so that a post whose signature does not
// name its list can still be proven by SPF.
func TestSPFAligned(t *testing.T) {
	t.Parallel()
	d := mailtest.NewDNS(t, keyRecord("ed1", "example.test", edKey()), `example.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"`)
	signed := sign(t, post, "example.test", "ed1", edKey())
	for _, tc := range []struct{ mailFrom, want string }{
		{"alice@example.test", "example.test"},
		{"bounces@elsewhere.test", ""},
	} {
		res, err := newVerifier(d.Addr).Verify(context.Background(), Input{RemoteIP: loopback, Helo: "mx.example.test", MailFrom: tc.mailFrom, Message: []byte(signed)})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.SPFAligned(); got != tc.want || res.DMARC.Aligned != "dkim" {
			t.Errorf("MAIL FROM %s: SPFAligned() = %q, want %q (DMARC %+v)", tc.mailFrom, got, tc.want, res.DMARC)
		}
	}
}
