package digest

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"crewmail/store"
	"crewmail/templates"
)

type fuzzLinks struct{}

func (fuzzLinks) ReplyAddress(list string, seq uint64) string { return "crew+r-x@lists.example.test" }
func (fuzzLinks) PrivateReplyAddress(list string, seq uint64) string {
	return "crew+p-x@lists.example.test"
}
func (fuzzLinks) MuteAddress(list string, thread uint64) string {
	return "crew+mute-x@lists.example.test"
}
func (fuzzLinks) Address(list, cmd string) string { return "crew+" + cmd + "@lists.example.test" }
func (fuzzLinks) BounceAddress(list string, member uint64) string {
	return "crew+bounces-x@lists.example.test"
}
func (fuzzLinks) DigestMessageID(list string) string { return "digest.x@lists.example.test" }

// FuzzDigest renders a digest of arbitrary archived bytes: a whole message, never a panic, and
// both parts are valid UTF-8.
func FuzzDigest(f *testing.F) {
	tpl, err := templates.New("")
	if err != nil {
		f.Fatal(err)
	}
	r := &Renderer{Templates: tpl, Hostname: "lists.example.test", MaxBytes: 64 << 10}
	f.Add([]byte("From: Ann <ann@example.test>\r\nSubject: Seeds\r\n\r\nHello <b>&\r\n> quoted\r\n-- \r\nAnn\r\n"))
	f.Add([]byte("From: =?utf-8?q?J=C3=BCrgen?= <j@example.test>\r\nContent-Type: text/html\r\n\r\n<p>hi<blockquote>old</blockquote>"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: application/pdf; name=\"a\\\".pdf\"\r\n\r\n%PDF\r\n--x--\r\n"))
	f.Add([]byte("From: =?utf-8?q?=E2=80=AEecilA_alice=40example=2Eorg?= <m@evil.test>\r\nSubject: =?utf-8?q?a=0Ab?=\r\n\r\nhi\r\n"))
	l := store.List{Address: "crew@lists.example.test", Name: "Garden <crew>"}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := readPost(l.Address, store.Post{Seq: 1, Thread: 1, From: "a@example.test", Subject: string(raw[:min(len(raw), 40)]), Received: time.Unix(1e9, 0)}, raw, fuzzLinks{}, time.UTC)
		d := build(l, "daily", []post{p}, 0, fuzzLinks{}, time.UTC, time.Unix(1e9, 0), nil)
		// Names and subjects are one line without bidi controls; a name is never address-like.
		if m := d.Threads[0].Messages[0]; m.Author != m.Address && strings.ContainsAny(m.Author, "@\r\n\u202e") || strings.ContainsAny(d.Threads[0].Subject, "\r\n\t\u2028\u202e") {
			t.Errorf("author %q, subject %q", m.Author, d.Threads[0].Subject)
		}
		msgs, err := r.Build(d, Addresses{From: l.Address, To: l.Address})
		if err != nil {
			t.Fatalf("build: %v", err)
		}
		if len(msgs) == 0 {
			t.Fatal("no message")
		}
		for _, part := range []func(Digest) (string, error){r.Text, r.HTML} {
			s, err := part(d)
			if err != nil {
				t.Fatal(err)
			}
			if !utf8.ValidString(s) {
				t.Error("a part is not valid UTF-8")
			}
			if strings.Contains(s, "<script") {
				t.Error("markup from the post reached the digest unescaped")
			}
		}
	})
}
