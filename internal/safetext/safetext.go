// Package safetext owns how text that senders wrote (subjects, display names, lines of a post)
// looks once crewmail shows it to people in mail of its own (notices, digests): one line, no
// control characters, no bidirectional overrides that reorder what is around them, and a
// display name that cannot pass for an address.
package safetext

import (
	"strings"
	"unicode/utf8"
)

// Line returns s as one line of plain text: invalid UTF-8 becomes U+FFFD; every run of control
// characters (C0 including CR, LF and TAB, DEL, C1) and of line or paragraph separators
// (U+2028, U+2029) becomes one space; bidirectional controls are removed; leading and trailing
// spaces are cut. An encoded newline in a Subject (RFC 2047 "=0A") then cannot start a line of
// its own in a notice, and U+202E cannot turn "moc.elpmaxe" into what it is not.
func Line(s string) string {
	if utf8.ValidString(s) && clean(s) {
		return strings.TrimSpace(s)
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case Bidi(r):
			continue
		case breaks(r):
			if !space {
				b.WriteByte(' ')
				space = true
			}
			continue
		}
		b.WriteRune(r)
		space = r == ' '
	}
	return strings.TrimSpace(b.String())
}

// clean reports whether s has nothing Line would change but surrounding spaces.
func clean(s string) bool {
	for _, r := range s {
		if Bidi(r) || breaks(r) {
			return false
		}
	}
	return true
}

// breaks reports whether r is a control character or a line or paragraph separator.
func breaks(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == '\u2028' || r == '\u2029'
}

// Bidi reports whether r is a bidirectional formatting character (Unicode UAX #9 §2: the
// embeddings and overrides U+202A–U+202E, the isolates U+2066–U+2069, and the marks U+200E,
// U+200F and U+061C), which can make text read differently from what it is.
func Bidi(r rune) bool {
	return (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') ||
		r == '\u200e' || r == '\u200f' || r == '\u061c'
}

// Author is how a post's author is named beside the address: the display name as Line makes
// it, or "" when there is none or when it looks like an address (it holds an "@", or a
// full-width or small one), which would make the reader take it for the sender's address.
func Author(name string) string {
	name = Line(name)
	if strings.ContainsAny(name, "@\uff20\ufe6b") {
		return ""
	}
	return name
}
