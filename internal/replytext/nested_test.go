package replytext

import (
	"slices"
	"testing"
	"time"

	"crewmail/internal/mailtest"
	"crewmail/internal/mimetree"
)

const nestedHeader = "From: a@example.org\r\nSubject: nested\r\nMIME-Version: 1.0\r\n"

// A command nested in multiparts as deep as mimetree looks is read; one nested 10,000 levels is
// not, and finding that out costs a few passes over the message, not one per level (a -request
// mail of 1.4 MB like it held the store's write transaction 58 s). A forwarded message is never
// what the person wrote, however deep.
func TestLinesOfDeeplyNestedMessage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		levels int
		want   []string // in the multiparts
	}{
		{"at the limit", mimetree.Default.Depth, []string{"help"}},
		{"one level beyond", mimetree.Default.Depth + 1, nil},
		{"10,000 levels", 10000, nil},
	} {
		for _, m := range []struct {
			kind string
			msg  []byte
			want []string
		}{
			{"multipart", mailtest.NestedMultipart(nestedHeader, tc.levels, "help"), tc.want},
			{"message", mailtest.NestedMessage(nestedHeader, tc.levels, "help"), nil},
		} {
			kind := m.kind
			start := time.Now()
			got, err := Lines(m.msg, 10)
			if err != nil || !slices.Equal(got, m.want) {
				t.Errorf("%s, %s: Lines = %q, %v; want %q", tc.name, kind, got, err, m.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%s, %s: Lines took %v, want well under 5 s", tc.name, kind, d)
			}
		}
	}
}

// Body reads the texts of multiparts nested to the limit, and not beyond.
func TestBodyOfDeeplyNestedMultipart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		levels int
		want   string
	}{
		{"at the limit", mimetree.Default.Depth, "hello"},
		{"one level beyond", mimetree.Default.Depth + 1, ""},
		{"10,000 levels", 10000, ""},
	} {
		got, err := Body(mailtest.NestedMultipart(nestedHeader, tc.levels, "hello"), 1000)
		if err != nil || got.Text != tc.want {
			t.Errorf("%s: Body = %+v, %v; want the text %q", tc.name, got, err, tc.want)
		}
	}
}
