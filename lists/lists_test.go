package lists

import (
	"bytes"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crewmail/store"
	"crewmail/templates"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func newTestService(t testing.TB) *Service {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	s := New(st, tpl, Config{Hostname: "lists.example.test", Separator: "+"}, slog.New(slog.DiscardHandler))
	s.Now = func() time.Time { return time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC) }
	return s
}

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"alice@example.test", "alice@example.test", ""},
		{"<Alice@Example.TEST>", "alice@example.test", ""},
		{"  bob@example.test. ", "bob@example.test", ""},
		{"jürgen@bücher.example", "jürgen@xn--bcher-kva.example", ""},
		{"root@localhost", "root@localhost", ""},
		{"no-at-sign", "", "not an email address"},
		{"@example.test", "", "not an email address"},
		{"alice@", "", "not an email address"},
		{"alice@nodot", "", "valid domain"},
		{"a b@example.test", "", "not an email address"},
		{"alice@exa mple.test", "", "valid domain"},
		{strings.Repeat("a", 65) + "@example.test", "", "not an email address"},
	} {
		got, err := ParseAddress(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseAddress(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseAddress(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestRoute(t *testing.T) {
	s := newTestService(t)
	if _, err := s.CreateList("crew@lists.example.test", ListOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := s.AddMember("crew@lists.example.test", "alice@example.test", "", false)
	if err != nil {
		t.Fatal(err)
	}
	verp := s.bounceAddress("crew@lists.example.test", m.ID)
	for _, tc := range []struct {
		rcpt string
		kind Kind
		code string
	}{
		{"crew@lists.example.test", KindPost, ""},
		{"CREW@Lists.Example.Test", KindPost, ""},
		{"crew+help@lists.example.test", KindHelp, ""},
		{"crew+unsubscribe@lists.example.test", KindUnsubscribe, ""},
		{"crew+confirm-abc@lists.example.test", KindConfirm, ""},
		{verp, KindBounce, ""},
		{strings.ToUpper(verp), KindBounce, ""}, // tokens survive case folding
		{"crew+bounces-aaaa@lists.example.test", 0, "550 5.1.1"},
		{"crew+bounces@lists.example.test", 0, "550 5.1.1"},
		{"crew+owner-x@lists.example.test", 0, "550 5.1.1"},
		{"other@lists.example.test", 0, "550 5.1.1"},
		{"crew@lists.example.test.evil.test", 0, "550 5.7.1"},
		{"crew@example.test", 0, "550 5.7.1"},
		{"not an address", 0, "501 5.1.3"},
	} {
		tgt, err := s.Route(tc.rcpt)
		if tc.code == "" {
			if err != nil || tgt.Kind != tc.kind || tgt.List != "crew@lists.example.test" {
				t.Errorf("Route(%q) = %+v, %v; want kind %d", tc.rcpt, tgt, err, tc.kind)
			}
			continue
		}
		r, ok := IsRefusal(err)
		if !ok {
			t.Errorf("Route(%q) = %+v, %v; want refusal %s", tc.rcpt, tgt, err, tc.code)
			continue
		}
		if got := refusalCode(r); got != tc.code {
			t.Errorf("Route(%q) refused with %s (%s), want %s", tc.rcpt, got, r.Message, tc.code)
		}
	}
}

func refusalCode(r *Refusal) string {
	return fmt.Sprintf("%d %d.%d.%d", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2])
}

func TestConfirmTokens(t *testing.T) {
	s := newTestService(t)
	now := s.Now()
	tok := s.confirmToken("crew@x.test", actionUnsubscribe, 42, now.Add(confirmValidity))
	if tok != strings.ToLower(tok) {
		t.Errorf("token %q is not lowercase", tok)
	}
	if a, id, err := s.parseConfirmToken("crew@x.test", tok, now); err != nil || a != actionUnsubscribe || id != 42 {
		t.Errorf("parse = %d, %d, %v", a, id, err)
	}
	if _, _, err := s.parseConfirmToken("crew@x.test", strings.ToUpper(tok), now); err != nil {
		t.Errorf("upper-cased token refused: %v", err)
	}
	if _, _, err := s.parseConfirmToken("other@x.test", tok, now); err == nil {
		t.Error("token accepted for another list")
	}
	if _, _, err := s.parseConfirmToken("crew@x.test", tok, now.Add(8*24*time.Hour)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v", err)
	}
	for i := range tok {
		flipped := []byte(tok)
		flipped[i] = "ab"[map[bool]int{true: 1}[flipped[i] == 'a']]
		if _, _, err := s.parseConfirmToken("crew@x.test", string(flipped), now); err == nil {
			t.Errorf("tampered token %q accepted", flipped)
		}
	}
}

// TestComposeGolden compares the list copy of a post with a golden file; -update rewrites it.
func TestComposeGolden(t *testing.T) {
	for _, tc := range []struct {
		name     string
		prefix   string
		url      string
		auth     Auth
		authorIn string
	}{
		{"plain", "", "", Auth{}, ""},
		{"prefix-and-archive", "[Garden]", "https://lists.example.test/crew/", Auth{}, ""},
		// The author signed and the list changes nothing: From stays, whatever the policy.
		{"signed-reject-unchanged", "", "", Auth{Pass: true, Method: "dkim", DKIMAligned: true, DMARCPolicy: "reject"}, ""},
		// A prefix breaks the author's signature under p=reject: From the list, author in Reply-To.
		{"dmarc-from-rewrite", "[Garden]", "", Auth{Pass: true, Method: "dkim", DKIMAligned: true, DMARCPolicy: "reject"}, ""},
		// Unsigned (SPF passed at our door, which no member's server will see) under
		// p=quarantine: From the list, author in Cc as the list asks.
		{"dmarc-from-rewrite-cc", "", "", Auth{Pass: true, Method: "spf", DMARCPolicy: "quarantine"}, "cc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestService(t)
			prefix, url := tc.prefix, tc.url
			if _, err := s.CreateList("crew@lists.example.test", ListOptions{Name: "Garden crew: Ünter", SubjectPrefix: &prefix, ArchiveURL: &url, AuthorIn: tc.authorIn, Post: "members"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.AddMember("crew@lists.example.test", "alice@example.test", "", false); err != nil {
				t.Fatal(err)
			}
			in, err := os.ReadFile(filepath.Join("testdata", "post.eml"))
			if err != nil {
				t.Fatal(err)
			}
			tgt, _ := s.Route("crew@lists.example.test")
			res, err := s.Accept(Envelope{From: "alice@example.test", Targets: []Target{tgt}, Auth: tc.auth, Received: "Received: from test;\r\n\tWed, 25 Nov 2026 10:00:00 +0000\r\n"}, in)
			if err != nil {
				t.Fatal(err)
			}
			var d store.Delivery
			_ = s.st.View(func(tx store.Tx) error {
				return tx.Outbox(func(row store.Delivery) error { d = row; return nil })
			})
			if res.Queued != 1 || d.Seq != 1 {
				t.Fatalf("queued %d, outbox row %+v", res.Queued, d)
			}
			got, err := s.Compose(d)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "compose-"+tc.name+".eml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("list copy differs from %s (run with -update to accept):\n%s", golden, got)
			}
			rewritten := strings.Contains(tc.name, "rewrite")
			authorKept := bytes.Contains(got, []byte("\r\nReply-To: \"Alice\" <alice@example.test>\r\n")) || bytes.Contains(got, []byte("\r\nCc: \"Alice\" <alice@example.test>\r\n"))
			if rewritten && !authorKept {
				t.Error("From rewritten but the author is in neither Reply-To nor Cc")
			}
			if rewritten != bytes.Contains(got, []byte("X-Original-From: Alice <alice@example.test>\r\n")) {
				t.Errorf("From rewritten = %v, want %v", !rewritten, rewritten)
			}
			if tc.prefix == "" && !rewritten && !bytes.HasSuffix(got, in) {
				t.Error("without a prefix the author's message must come through unchanged")
			}
			if !bytes.HasSuffix(got, in[bytes.Index(in, []byte("\r\n\r\n")):]) {
				t.Error("the body changed")
			}
		})
	}
}

func TestAcceptIsAllOrNothing(t *testing.T) {
	s := newTestService(t)
	for _, l := range []string{"crew@lists.example.test", "open@lists.example.test"} {
		if _, err := s.CreateList(l, ListOptions{Post: "members"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddMember("crew@lists.example.test", "alice@example.test", "", false); err != nil {
		t.Fatal(err)
	}
	crew, _ := s.Route("crew@lists.example.test")
	open, _ := s.Route("open@lists.example.test")
	msg := []byte("From: alice@example.test\r\nMessage-ID: <both@example.test>\r\nSubject: both\r\n\r\nhi\r\n")
	// Alice is not a member of open@ (policy members): the whole message is refused, and
	// crew@ does not keep it either.
	_, err := s.Accept(Envelope{From: "alice@example.test", Targets: []Target{crew, open}}, msg)
	if _, ok := IsRefusal(err); !ok {
		t.Fatalf("Accept to a list she is not on: %v", err)
	}
	posts, err := s.Archive("crew@lists.example.test")
	if err != nil || len(posts) != 0 {
		t.Errorf("crew@ archived %d posts from a refused message (%v)", len(posts), err)
	}
	if _, err := s.UpdateList("open@lists.example.test", ListOptions{Post: "anyone"}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Accept(Envelope{From: "alice@example.test", Targets: []Target{crew, open, crew}}, msg)
	if err != nil || len(res.Posts) != 2 {
		t.Fatalf("Accept to two lists: %+v, %v", res, err)
	}
}

func TestMessageWithoutMessageIDGetsOne(t *testing.T) {
	s := newTestService(t)
	if _, err := s.CreateList("crew@lists.example.test", ListOptions{Post: "anyone"}); err != nil {
		t.Fatal(err)
	}
	tgt, _ := s.Route("crew@lists.example.test")
	msg := []byte("From: x@example.test\r\nSubject: no id\r\n\r\nhi\r\n")
	res, err := s.Accept(Envelope{From: "x@example.test", Targets: []Target{tgt}}, msg)
	if err != nil || len(res.Posts) != 1 {
		t.Fatal(res, err)
	}
	id := res.Posts[0].MessageID
	if !strings.HasSuffix(id, "@lists.example.test") {
		t.Errorf("made-up Message-ID %q", id)
	}
	var raw []byte
	_ = s.st.View(func(tx store.Tx) error {
		_, raw, err = tx.Post("crew@lists.example.test", 1)
		return err
	})
	if !bytes.HasPrefix(raw, []byte("Message-ID: <"+id+">\r\n")) || !bytes.HasSuffix(raw, msg) {
		t.Errorf("archived copy:\n%s", raw)
	}
}

func deliveryOf(p Archived) store.Delivery {
	return store.Delivery{List: p.List, Seq: p.Seq}
}
