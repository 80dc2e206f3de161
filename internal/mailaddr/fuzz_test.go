package mailaddr

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// The seed corpus is in testdata/fuzz; "go test" runs it, "go test -fuzz=FuzzParse
// ./internal/mailaddr" explores further.

// FuzzParse: whatever Parse accepts has one normal form, which parses to itself, as does its
// Unicode spelling; the parts are those of the normal form.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			if !a.IsZero() {
				t.Errorf("Parse(%q) failed (%v) but returned %q", s, err, a)
			}
			return
		}
		n := a.String()
		if again, err := Parse(n); err != nil || again != a {
			t.Errorf("Parse(%q) = %q, but that parses to %q, %v", s, n, again, err)
		}
		if n != strings.ToLower(n) || !utf8.ValidString(n) {
			t.Errorf("Parse(%q) = %q: not lowercase UTF-8", s, n)
		}
		if local, domain, ok := Split(n); !ok || local != a.Local() || domain != a.Domain() {
			t.Errorf("Parse(%q) = %q, whose parts are %q and %q, not %q and %q", s, n, local, domain, a.Local(), a.Domain())
		}
		for i := 0; i < len(a.Domain()); i++ {
			if a.Domain()[i] >= 0x80 {
				t.Fatalf("Parse(%q): domain %q is not ASCII", s, a.Domain())
			}
		}
		if u, err := Parse(a.Unicode()); err != nil || u != a {
			t.Errorf("Parse(%q) = %q, but its Unicode form %q parses to %q, %v", s, n, a.Unicode(), u, err)
		}
		if ascii, err := ToASCII(n); err == nil && ascii != n {
			t.Errorf("ToASCII(%q) = %q, want it unchanged", n, ascii)
		}
	})
}
