package web

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzPresentation feeds what senders and browsers write (a subject, a file name, a
// User-Agent, a line of a post) to what makes them one safe piece of a page or a header (seed corpus in
// testdata/fuzz/FuzzPresentation).
func FuzzPresentation(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		subject := displaySubject(s)
		if subject == "" || strings.ContainsAny(subject, "\r\n") || !utf8.ValidString(subject) {
			t.Errorf("displaySubject(%q) = %q", s, subject)
		}
		name := fileName(s)
		if name == "" || strings.ContainsAny(name, "/\\\"\r\n") || strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			t.Errorf("fileName(%q) = %q", s, name)
		}
		var joined strings.Builder
		for _, p := range highlight(s, map[string]bool{"seeds": true, "cafe": true}) {
			joined.WriteString(p.Text)
		}
		if joined.String() != strings.ToValidUTF8(s, "\uFFFD") {
			t.Errorf("highlight(%q) gives back %q", s, joined.String())
		}
		if a := agent(s); !strings.HasPrefix(a, "A browser") && !strings.ContainsFunc(a[:1], unicode.IsUpper) && !strings.HasPrefix(a, "curl") {
			t.Errorf("agent(%q) = %q", s, a)
		}
	})
}
