package verify

import (
	"context"
	"crypto"
	"testing"

	"crewmail/internal/mailtest"
)

// BenchmarkVerify is the cost of verifying one message (DKIM, SPF for MAIL FROM and HELO,
// DMARC) with a warm DNS cache: what every post costs once its sender's records are known.
func BenchmarkVerify(b *testing.B) {
	d := mailtest.NewDNS(b,
		keyRecord("rsa1", "example.test", rsaKey()),
		keyRecord("ed1", "example.test", edKey()),
		`_dmarc.example.test. 300 IN TXT "v=DMARC1; p=reject"`,
		`example.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"`,
		`mx.example.test. 300 IN TXT "v=spf1 a -all"`,
		`mx.example.test. 300 IN A 127.0.0.1`,
	)
	for _, bc := range []struct {
		name     string
		selector string
		key      crypto.Signer
	}{
		{"rsa2048", "rsa1", rsaKey()},
		{"ed25519", "ed1", edKey()},
		{"unsigned", "", nil},
	} {
		msg := post
		if bc.key != nil {
			msg = sign(b, post, "example.test", bc.selector, bc.key)
		}
		in := Input{RemoteIP: loopback, Helo: "mx.example.test", MailFrom: "alice@example.test", Message: []byte(msg)}
		v := newVerifier(d.Addr)
		res, err := v.Verify(context.Background(), in) // warms the cache
		if err != nil || !res.Pass() || (bc.key != nil) != (len(res.DKIM) == 1 && res.DKIM[0].Result == "pass") {
			b.Fatalf("%+v, %v", res, err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := v.Verify(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := v.Verify(context.Background(), in); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
