package lists

import (
	"strings"
	"testing"
)

func TestAdministrivia(t *testing.T) {
	for _, c := range []struct {
		subject string
		own     []string
		want    bool
	}{
		{"unsubscribe", nil, true},
		{"Re: [Garden crew] Unsubscribe", nil, true},
		{"Meeting", []string{"unsubscribe"}, true},
		{"", []string{"Please remove me from the list.", "Thanks"}, true},
		{"set digest on", nil, true},
		{"help", []string{"help"}, true},
		{"", nil, true},
		{"", []string{"", "  "}, true},
		{"Remove me", []string{"remove me please"}, true},
		// Posts.
		{"Help", []string{"My tomatoes have spots; what do I do?"}, false},
		{"Re: Help", []string{"Thanks for the help!"}, false},
		{"Seeds", nil, false},
		{"", []string{"The seeds are in."}, false},
		{"unsubscribe", []string{"a", "b", "c", "d"}, false},
		{"Setting up the stand", nil, false},
		{"set the table for six at the party on friday", nil, false},
	} {
		if _, got := administrivia(c.subject, "Garden crew", c.own); got != c.want {
			t.Errorf("administrivia(%q, %q) = %v, want %v", c.subject, c.own, got, c.want)
		}
	}
}

// FuzzAdministrivia: any subject and text are read without failing, and a text of more lines
// than a command takes is a post.
func FuzzAdministrivia(f *testing.F) {
	f.Add("Re: [Garden crew] unsubscribe", "Please remove me\nThanks,\nAnn")
	f.Add("", "")
	f.Add("set digest on", "")
	f.Fuzz(func(t *testing.T, subject, text string) {
		lines := strings.Split(text, "\n")
		administrivia(subject, "Garden crew", lines)
		if _, ok := administrivia(subject, "Garden crew", append(lines, "a", "b", "c", "d")); ok && len(strings.Join(lines, "")) > 0 {
			t.Fatalf("%d lines held as a command", len(lines)+4)
		}
	})
}
