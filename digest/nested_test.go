package digest

import (
	"testing"
	"time"

	"crewmail/internal/mailtest"
	"crewmail/internal/mimetree"
	"crewmail/store"
)

// A post's text nested in multiparts as deep as mimetree looks shows in the digest; one nested
// 10,000 levels deep shows no text, and reading it costs a few passes over the post, not one
// per level.
func TestDigestOfDeeplyNestedPost(t *testing.T) {
	const hdr = "From: Mallory <mallory@example.test>\r\nSubject: nested\r\nMIME-Version: 1.0\r\n"
	p := store.Post{Seq: 7, From: "mallory@example.test", Subject: "nested",
		Received: time.Date(2026, 11, 25, 7, 0, 0, 0, time.UTC)}
	for _, tc := range []struct {
		name   string
		levels int
		want   string
	}{
		{"at the limit", mimetree.Default.Depth, "Ripe tomatoes by the shed."},
		{"10,000 levels", 10000, ""},
	} {
		got := readPost("crew@lists.example.test", p, mailtest.NestedMultipart(hdr, tc.levels, "Ripe tomatoes by the shed."),
			fuzzLinks{}, time.UTC)
		if got.message.Text != tc.want {
			t.Errorf("%s: the digest shows %q, want %q", tc.name, got.message.Text, tc.want)
		}
	}
}
