package main

import (
	"bytes"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"

	"crewmail/internal/mailtest"
)

// rawParts returns the text and HTML parts of a mail as sent (the text part still flowed).
func rawParts(t *testing.T, m mailtest.Message) (text, page string) {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			return text, page
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p.Body)
		switch ct := p.Header.Get("Content-Type"); {
		case strings.HasPrefix(ct, "text/plain"):
			text = string(b)
		case strings.HasPrefix(ct, "text/html"):
			page = string(b)
		}
	}
}

// withBaseURL is a test configuration whose web reader is at base.
func withBaseURL(t *testing.T, sink *mailtest.Sink, base string) string {
	t.Helper()
	cfg := testConfig(t, t.TempDir(), sink.Addr, "")
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(text), "[http]\n", "[http]\nbase_url = \""+base+"\"\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

var signInRE = regexp.MustCompile(`https://lists\.example\.test/s/[a-z0-9]+`)

// TestDigestLinksToTheReader: with [http] base_url set, a digest's conversation heading links
// to the conversation in the web reader (a "Read online" line in the text part), its
// attachments to their downloads and the "…" of a trimmed reply to the whole message; its
// footer carries each member's own sign-in link although the members share one digest, and
// every line of the flowed text part stays within 78 columns. A notice to a member carries
// her sign-in link too; one to a stranger does not.
func TestDigestLinksToTheReader(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := startTestServer(t, withBaseURL(t, sink, "https://lists.example.test/"))
	ts.mustCLI(t, "list", "create", crew, "-name", "Garden crew")
	alice, bob, carol := "alice@example.test", "bob@example.test", "carol@example.test"
	ts.mustCLI(t, "member", "add", crew, alice, bob, carol)
	ts.mustCLI(t, "member", "mode", crew, bob, "daily")
	ts.mustCLI(t, "member", "mode", crew, carol, "daily")
	settle(t, ts)

	withFile := []byte("From: " + alice + "\r\nTo: " + crew + "\r\nSubject: Seeds\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n" +
		"Message-ID: <seeds@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe sowing plan is attached.\r\n" +
		"--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"sowing plan.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n")
	if err := send(t, ts.SMTPAddr, alice, []string{crew}, withFile); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	reply := append([]byte("In-Reply-To: <seeds@example.test>\r\n"), post(alice, "Re: Seeds", "seeds-2@example.test",
		"And sow the beans in April.\r\n\r\nOn Wednesday, alice wrote:\r\n> The sowing plan is attached.\r\n")...)
	if err := send(t, ts.SMTPAddr, alice, []string{crew}, reply); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	conv := "https://lists.example.test/l/" + crew + "/t/1"
	// A preview is nobody's: its footer links to the list's page, not to a sign-in.
	if out := string(unflow([]byte(ts.mustCLI(t, "digest", "preview", crew, "-member", bob)), true)); !strings.Contains(out, "Read online: "+conv) ||
		!strings.Contains(out, "Read and search the archive: https://lists.example.test/l/"+crew+"/") || strings.Contains(out, "sign-in") {
		t.Errorf("preview:\n%s", out)
	}
	n := len(sink.Messages())
	if out := ts.mustCLI(t, "digest", "send", "-now"); !strings.Contains(out, "sent 1 digests to 2 members (2 messages)") {
		t.Fatalf("digest send: %s", out)
	}
	settle(t, ts)

	links := map[string]string{}
	for _, m := range sink.Messages()[n:] {
		text, page := rawParts(t, m)
		for line := range strings.SplitSeq(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
			if len([]rune(line)) > 78 {
				t.Errorf("digest to %s: a text line of %d columns: %q", m.To[0], len([]rune(line)), line)
			}
		}
		flat := string(unflow([]byte(text), true))
		page = html.UnescapeString(page)
		for _, want := range []string{
			"Seeds  [new]\nRead online: " + conv + "\n",
			"Attachment: sowing plan.pdf (9 bytes)\n  https://lists.example.test/l/" + crew + "/m/1/a/1/sowing%20plan.pdf\n",
			"… (the whole message: https://lists.example.test/l/" + crew + "/m/2)",
			"Read and search the archive: https://lists.example.test/s/",
		} {
			if !strings.Contains(flat, want) {
				t.Errorf("digest to %s: the text part lacks %q:\n%s", m.To[0], want, flat)
			}
		}
		for _, want := range []string{
			`<a href="` + conv + `" style="color:#1f1f1f;">Seeds</a>`,
			`<a href="https://lists.example.test/l/` + crew + `/m/1/a/1/sowing%20plan.pdf"`,
			`<a href="https://lists.example.test/l/` + crew + `/m/2" title="the whole message" style="color:#595959; font-size:14px;">… the whole message</a>`,
			`<a href="https://lists.example.test/s/`,
		} {
			if !strings.Contains(page, want) {
				t.Errorf("digest to %s: the HTML part lacks %q:\n%s", m.To[0], want, page)
			}
		}
		textLink, pageLink := signInRE.FindString(flat), signInRE.FindString(page)
		if textLink == "" || textLink != pageLink {
			t.Errorf("digest to %s: sign-in links %q (text) and %q (HTML)", m.To[0], textLink, pageLink)
		}
		links[m.To[0]] = textLink
	}
	if len(links) != 2 || links[bob] == links[carol] {
		t.Fatalf("sign-in links of the digests: %v", links)
	}
	// Each link signs in its own member: the reader asks "Sign in … as bob?".
	for who, link := range links {
		u, _ := url.Parse(link)
		resp, err := http.Get("http://" + ts.HTTPAddr + u.Path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "as <b>"+who+"</b>") {
			t.Errorf("%s's link %s: %d\n%s", who, link, resp.StatusCode, body)
		}
	}

	// A notice to a member carries her link; a confirmation to a stranger does not.
	n = len(sink.Messages())
	if err := ask(t, ts, bob, "crew+weekly@"+testDomain, "", true); err != nil {
		t.Fatal(err)
	}
	if err := ask(t, ts, "dave@example.test", "crew+subscribe@"+testDomain, "", true); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	got := map[string]string{}
	for _, m := range sink.Messages()[n:] {
		got[m.To[0]] = text(t, m)
	}
	if !signInRE.MatchString(got[bob]) || !strings.Contains(got[bob], "\nRead and search the archive:") {
		t.Errorf("the notice to bob has no sign-in line:\n%s", got[bob])
	}
	if got["dave@example.test"] == "" || strings.Contains(got["dave@example.test"], "/s/") || strings.Contains(got["dave@example.test"], "Read and search") {
		t.Errorf("the confirmation to a stranger:\n%s", got["dave@example.test"])
	}
}
