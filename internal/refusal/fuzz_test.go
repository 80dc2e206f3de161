package refusal

import (
	"strings"
	"testing"
)

// FuzzRefuses: any text is read without failing, the same way twice, and an answer that
// begins with "yes" never refuses.
func FuzzRefuses(f *testing.F) {
	for _, s := range []string{"NO. I never asked for this. Please remove me.", "yes", "Ce n’est pas moi", "Ta bort mig", "a-'-b", "\u00a0no\u2028", ""} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, text string, leaving bool) {
		lines := strings.Split(text, "\n")
		first := Refuses(lines, leaving)
		if again := Refuses(lines, leaving); again != first {
			t.Fatal("two answers")
		}
		if Refuses(append([]string{"yes"}, lines...), leaving) {
			t.Fatalf("yes then %q refuses", text)
		}
	})
}
