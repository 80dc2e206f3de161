package digest

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"

	"crewmail/lists"
	"crewmail/store"
)

// digestParts takes the digest mails out of the outbox and returns the text and the HTML part
// of each.
func (w *world) digestParts() (texts, pages []string) {
	w.t.Helper()
	err := w.st.Update(func(tx store.Tx) error {
		rows, err := tx.ClaimDue(w.now.Add(24*60*60e9), 60e9, 10000)
		if err != nil {
			return err
		}
		for _, d := range rows {
			if d.Blob != 0 {
				msg, err := tx.Blob(d.Blob)
				if err != nil {
					return err
				}
				r, err := mail.CreateReader(bytes.NewReader(msg))
				if err != nil {
					return err
				}
				for {
					p, err := r.NextPart()
					if err != nil {
						break
					}
					b, _ := io.ReadAll(p.Body)
					if ct, _, _ := p.Header.(*mail.InlineHeader).ContentType(); ct == "text/html" {
						pages = append(pages, string(b))
					} else {
						texts = append(texts, string(b))
					}
				}
			}
			if err := tx.Delivered(d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return texts, pages
}

// TestDigestShowsTheAddressBesideTheCheck: the ✓ says a post was proven to come from its
// address, and only the display name stood beside it, which anyone chooses: `"Alice Smith"
// <mallory@…>` read "Alice Smith ✓". The address now stands beside the name; a name that
// looks like an address is replaced by the real one; bidirectional controls are removed; a
// Subject with encoded line breaks cannot add entries to the table of contents.
func TestDigestShowsTheAddressBesideTheCheck(t *testing.T) {
	w := newWorld(t, at(0, "06:00"))
	if _, err := w.svc.AddMember(crew, "reader@example.test", "daily", false); err != nil {
		t.Fatal(err)
	}
	tgt, err := w.svc.Route(crew)
	if err != nil {
		t.Fatal(err)
	}
	proven := lists.Auth{Pass: true, Method: "spf", Domain: "evil.test", SPFDomain: "evil.test"}
	for i, from := range []string{
		`"Alice Smith" <mallory@evil.test>`,
		`=?utf-8?q?alice=40example=2Eorg?= <mallory@evil.test>`,
		`=?utf-8?q?=E2=80=AEhtimS_ecilA?= <mallory@evil.test>`,
	} {
		msg := "From: " + from + "\r\nSubject: =?utf-8?q?Seeds=0D=0A=0D=0A2=2E_Fake_conversation=E2=80=AE?=\r\n" +
			"Message-ID: <n" + string(rune('a'+i)) + "@evil.test>\r\n\r\nText.\r\n"
		if _, err := w.svc.Accept(lists.Envelope{From: "mallory@evil.test", Targets: []lists.Target{tgt}, Auth: proven}, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	w.now = at(0, "08:00")
	w.send()
	texts, pages := w.digestParts()
	if len(texts) != 1 || len(pages) != 1 {
		t.Fatalf("%d text and %d HTML parts, want one digest", len(texts), len(pages))
	}
	text, page := texts[0], pages[0]
	checks := 0
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "✓") && !strings.Contains(line, "means the post was proven") {
			checks++
			if !strings.Contains(line, "mallory@evil.test") {
				t.Errorf("a ✓ without the address beside it: %q", line)
			}
		}
		if strings.HasPrefix(strings.TrimSpace(line), "2. Fake") {
			t.Errorf("the Subject added a line to the digest: %q", line)
		}
	}
	if checks != 3 {
		t.Errorf("%d ✓ in the text part, want 3:\n%s", checks, text)
	}
	if n := strings.Count(page, "mallory@evil.test"); n < 3 {
		t.Errorf("the HTML part names the address %d times, want 3 at least:\n%s", n, page)
	}
	for name, part := range map[string]string{"text": text, "HTML": page} {
		if strings.Contains(part, "alice@example.org") || strings.Contains(part, "\u202e") {
			t.Errorf("the %s part shows an address-like name or a bidi override:\n%s", name, part)
		}
	}
}
