package lists

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// The seed corpora are in testdata/fuzz; "go test" runs them, "scripts/fuzz" or
// "go test -fuzz=FuzzX ./lists" explores further.

func FuzzParseAddress(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			return
		}
		again, err := ParseAddress(a)
		if err != nil || again != a {
			t.Errorf("ParseAddress(%q) = %q, but that normalizes to %q, %v", s, a, again, err)
		}
		if strings.Count(a, "@") < 1 || a != strings.ToLower(a) {
			t.Errorf("ParseAddress(%q) = %q", s, a)
		}
	})
}

func FuzzParseMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := parseMessage(raw)
		if err != nil {
			if _, ok := IsRefusal(err); !ok {
				t.Fatalf("parseMessage failed without a refusal: %v", err)
			}
			return
		}
		if a, err := ParseAddress(m.from); err != nil || a != m.from {
			t.Errorf("From %q is not normalized (%v)", m.from, err)
		}
		_ = m.references()
	})
}

// FuzzAccept posts arbitrary bytes to a list anyone may post to: a refusal or an archived copy
// that ends with exactly the bytes sent, never a panic.
func FuzzAccept(f *testing.F) {
	s := newTestService(f)
	if _, err := s.CreateList("crew@lists.example.test", ListOptions{Post: "anyone"}); err != nil {
		f.Fatal(err)
	}
	tgt, err := s.Route("crew@lists.example.test")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		res, err := s.Accept(Envelope{From: "a@example.test", Targets: []Target{tgt}}, raw)
		if err != nil {
			if _, ok := IsRefusal(err); !ok {
				t.Fatalf("Accept failed without a refusal: %v", err)
			}
			return
		}
		for _, p := range res.Posts {
			got, err := s.Compose(deliveryOf(p))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasSuffix(got, raw) {
				t.Errorf("list copy does not end with the message as sent")
			}
		}
	})
}

// FuzzCommands sends arbitrary bytes to crew-request@ as a proven owner and as a stranger: the
// commands they hold are carried out or answered, or the mail is refused; never a panic, and
// every answer renders.
func FuzzCommands(f *testing.F) {
	s := newTestService(f)
	if _, err := s.CreateList("crew@lists.example.test", ListOptions{Owners: []string{"o@example.test"}, Join: "open"}); err != nil {
		f.Fatal(err)
	}
	req, err := s.Route("crew-request@lists.example.test")
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("From: o@example.test\r\nSubject: who\r\n\r\ninvite a@example.test b@example.test\r\nremove a@example.test\r\ndaily\r\n"))
	f.Add([]byte("From: x@example.test\r\nContent-Type: text/html\r\n\r\n<p>subscribe</p><blockquote>who</blockquote>"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, auth := range []Auth{{Pass: true, Method: "dkim", Domain: "example.test"}, {}} {
			if _, err := s.Accept(Envelope{From: "o@example.test", Targets: []Target{req}, Auth: auth}, raw); err != nil {
				if _, ok := IsRefusal(err); !ok {
					t.Fatalf("Accept failed without a refusal: %v", err)
				}
			}
		}
	})
}

// FuzzParsePause: what a member writes to ask for a pause is either refused or ends after now
// and within a year, never a panic.
func FuzzParsePause(f *testing.F) {
	now := time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		until, err := parsePause(s, now, time.UTC)
		if err != nil {
			return
		}
		if !until.After(now) || until.Sub(now) > maxPause {
			t.Errorf("parsePause(%q) = %v, not within a year after %v", s, until, now)
		}
	})
}

// FuzzNamedIDs: the Message-IDs a mail to crew+mute@ or crew+follow@ names, found in any
// bytes that parse as a message, are ids (id-left "@" id-right), never a panic.
func FuzzNamedIDs(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := parseMessage(raw)
		if err != nil {
			return
		}
		for _, id := range m.namedIDs() {
			if !strings.Contains(id, "@") || strings.ContainsAny(id, "<> \t\r\n") {
				t.Errorf("namedIDs gave %q", id)
			}
		}
	})
}

// FuzzRedactedMessage: whatever an archived post holds, its tombstone keeps no word of its
// body and no address but the pseudonym in From, and its anonymised copy names no author.
func FuzzRedactedMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		if _, err := parseMessage(raw); err != nil {
			return // never archived
		}
		tomb, err := redactedMessage(raw, "removed", "removed at the author's request", "former-member-x@invalid.x.test")
		if err != nil {
			return
		}
		m, err := parseMessage(tomb)
		if err != nil {
			t.Fatalf("the tombstone does not parse: %v\n%q", err, tomb)
		}
		if m.from != "former-member-x@invalid.x.test" {
			t.Errorf("the tombstone is From %q", m.from)
		}
		_, body, _ := bytes.Cut(tomb, []byte("\r\n\r\n"))
		if string(body) != "This post was removed at the author's request.\r\n" {
			t.Errorf("the tombstone's body: %q", body)
		}
		anon, err := redactedMessage(raw, "anonymised", "anonymised at the author's request", "former-member-x@invalid.x.test")
		if err != nil {
			t.Fatalf("anonymise what a tombstone was made of: %v", err)
		}
		if m, err := parseMessage(anon); err != nil || m.from != "former-member-x@invalid.x.test" {
			t.Errorf("the anonymised copy: From %q, %v", m.from, err)
		}
	})
}
