package dsn

import (
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"crewmail/internal/rawmsg"
)

// The seed corpus is in testdata/fuzz/FuzzParse, made from the fixtures; "go test" runs it,
// "go test -fuzz=FuzzParse ./internal/dsn" explores further.

var statusForm = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)

// FuzzParse feeds Parse arbitrary messages: it must not panic, must fail exactly when the
// header cannot be read, and what it returns must be as documented, whatever the input.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, err := Parse(msg)
		if _, herr := rawmsg.ReadHeader(msg); (err != nil) != (herr != nil) {
			t.Fatalf("Parse: %v; rawmsg.ReadHeader: %v", err, herr)
		}
		if err != nil {
			if r != (Report{}) {
				t.Errorf("Parse returned %s with the error %v", show(r), err)
			}
			return
		}
		if r.Kind < Unknown || r.Kind > AutoReply {
			t.Errorf("Kind %d", r.Kind)
		}
		if r.Status != "" && !statusForm.MatchString(r.Status) {
			t.Errorf("Status %q", r.Status)
		}
		if r.Recipient != strings.ToLower(r.Recipient) || strings.ContainsAny(r.Recipient, " \t") {
			t.Errorf("Recipient %q", r.Recipient)
		}
		for name, v := range map[string]struct {
			s   string
			max int
		}{"Diagnostic": {r.Diagnostic, maxDiagnostic}, "Recipient": {r.Recipient, maxAddress}, "Reporter": {r.Reporter, maxAddress}} {
			if !utf8.ValidString(v.s) || utf8.RuneCountInString(v.s) > v.max || v.s != strings.TrimSpace(v.s) ||
				strings.ContainsFunc(v.s, unicode.IsControl) {
				t.Errorf("%s %q", name, v.s)
			}
		}
	})
}
