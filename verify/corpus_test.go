package verify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"crewmail/internal/mailtest"
)

// TestCorpus: every message of the real-mail corpus's mime/ and malformed/ gets a result and an
// Authentication-Results field, against a DNS that knows none of their keys.
func TestCorpus(t *testing.T) {
	t.Parallel()
	files := mailtest.Corpus(t, "mime", "malformed")
	d := mailtest.NewDNS(t)
	v := newVerifier(d.Addr)
	counts := map[string]int{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := v.Verify(context.Background(), Input{RemoteIP: loopback, Helo: "mx.example.test", MailFrom: "someone@example.test", Message: mailtest.SMTPForm(raw)})
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		h := res.Header(ourID)
		if !strings.HasPrefix(h, "Authentication-Results: "+ourID+";\r\n") || !strings.HasSuffix(h, "\r\n") {
			t.Errorf("%s: header %q", filepath.Base(f), h)
		}
		if res.Pass() {
			t.Errorf("%s passes without any key or SPF record", filepath.Base(f))
		}
		for _, r := range res.DKIM {
			counts["dkim="+r.Result]++
			if strings.Contains(r.Reason, "internal error") {
				t.Errorf("%s: %s", filepath.Base(f), r.Reason)
			}
		}
		counts["dmarc="+res.DMARC.Result]++
	}
	t.Logf("%d messages: %v", len(files), counts)
}
