package verify

import (
	"bytes"
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
	dir := os.Getenv("CREWMAIL_CORPUS")
	if dir == "" {
		t.Skip("CREWMAIL_CORPUS is not set; skipping the real-mail corpus")
	}
	if !filepath.IsAbs(dir) {
		// Relative to the project's root, where people run "go test ./...", not to this
		// package's folder, where the test runs.
		dir = filepath.Join("..", dir)
	}
	var files []string
	for _, sub := range []string{"mime", "malformed"} {
		matches, err := filepath.Glob(filepath.Join(dir, sub, "*.eml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(matches) == 0 {
			t.Fatalf("no messages in %s", filepath.Join(dir, sub))
		}
		files = append(files, matches...)
	}
	d := mailtest.NewDNS(t)
	v := newVerifier(d.Addr)
	counts := map[string]int{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := v.Verify(context.Background(), Input{RemoteIP: loopback, Helo: "mx.example.test", MailFrom: "someone@example.test", Message: crlf(raw)})
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

// crlf gives a message read from a file the line endings SMTP carries, without the mbox
// "From " envelope line some files begin with (it is not part of the message).
func crlf(b []byte) []byte {
	if bytes.HasPrefix(b, []byte("From ")) {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}
