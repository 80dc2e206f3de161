package replytext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// The seed corpus is in testdata/fuzz/FuzzLines, made from the fixtures; "go test" runs it,
// "go test -fuzz=FuzzLines ./internal/replytext" explores further.

// FuzzLines feeds Lines arbitrary messages: it must not panic, and what it returns must be
// lines as documented, bounded whatever the input.
func FuzzLines(f *testing.F) {
	const max = 10
	f.Fuzz(func(t *testing.T, msg []byte) {
		lines, err := Lines(msg, max)
		if err != nil {
			if lines != nil {
				t.Errorf("Lines returned %q with the error %v", lines, err)
			}
			return
		}
		if len(lines) > max {
			t.Errorf("Lines returned %d lines, more than %d", len(lines), max)
		}
		size := 0
		for _, l := range lines {
			size += len(l)
			if l == "" || l != clean(l) || strings.ContainsAny(l, "\r\n") || !utf8.ValidString(l) {
				t.Errorf("Lines returned the line %q", l)
			}
		}
		// A decoded part is read up to maxText bytes; charset conversion can make a byte
		// three, and the U+FFFD that stands for an invalid byte is three.
		if size > 3*maxText {
			t.Errorf("Lines returned %d bytes", size)
		}
	})
}
