package safetext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Tomatoes", "Tomatoes"},
		{"  Tomatoes \t", "Tomatoes"},
		{"Hi\r\n\r\nReply YES to confirm", "Hi Reply YES to confirm"},
		{"a\tb\x00c\x7fd\u0085e", "a b c d e"},
		{"one\u2028two\u2029three", "one two three"},
		{"\u202eevil.exe\u202c", "evil.exe"},
		{"a\u2066b\u2069c\u200ed\u200fe\u061cf", "abcdef"},
		{"bad \xff byte", "bad \ufffd byte"},
		{"Jürgen Müller", "Jürgen Müller"},
	} {
		if got := Line(c.in); got != c.want {
			t.Errorf("Line(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestAuthor(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Alice Smith", "Alice Smith"},
		{"alice@example.org", ""},
		{"alice\uff20example.org", ""},
		{"alice\ufe6bexample.org", ""},
		{"\u202eAlice", "Alice"},
		{"", ""},
	} {
		if got := Author(c.in); got != c.want {
			t.Errorf("Author(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzLine(f *testing.F) {
	for _, s := range []string{"Tomatoes", "a\r\nb", "\u202eabc", "x\xffy", "\u2028", " \t "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Line(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Line(%q) = %q: not UTF-8", s, got)
		}
		for _, r := range got {
			if breaks(r) || Bidi(r) {
				t.Fatalf("Line(%q) = %q keeps %U", s, got, r)
			}
		}
		if got != strings.TrimSpace(got) || Line(got) != got {
			t.Fatalf("Line(%q) = %q is not stable", s, got)
		}
	})
}
