package listcopy

import (
	"strings"
	"testing"
)

// TestListIDPhrase: the name in List-Id is an RFC 5322 phrase: plain words as they are, a
// name with specials quoted, a name outside ASCII RFC 2047-encoded (RFC 2919 §3).
func TestListIDPhrase(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"Garden crew", "Garden crew <crew.lists.example.test>"},
		{"Garden, crew", `"Garden, crew" <crew.lists.example.test>`},
		{`Say "hi"`, `"Say \"hi\"" <crew.lists.example.test>`},
		{"Gärten, Crew", "=?utf-8?q?G=C3=A4rten,_Crew?= <crew.lists.example.test>"},
		{"", " <crew.lists.example.test>"},
	} {
		if got := ListID(tc.name, "crew@lists.example.test"); got != tc.want {
			t.Errorf("ListID(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestBlockOnTop: each kind of mail gets the fields it carries, in the order readers expect,
// on top of the message and nothing else changed.
func TestBlockOnTop(t *testing.T) {
	const msg = "From: a@example.test\r\nSubject: hi\r\n\r\nbody\r\n"
	for _, tc := range []struct {
		what string
		b    Block
		want string
	}{
		{"post", Block{Name: "Crew", Address: "crew@x.test", Post: true, Help: "crew+help@x.test", Unsubscribe: "crew+unsubscribe@x.test",
			OneClick: "https://x.test/u/abc", Archive: "https://x.test/a/", Precedence: true, Loop: true},
			"List-Id: Crew <crew.x.test>\r\nList-Post: <mailto:crew@x.test>\r\nList-Help: <mailto:crew+help@x.test>\r\n" +
				"List-Unsubscribe: <https://x.test/u/abc>, <mailto:crew+unsubscribe@x.test>\r\n" +
				"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nList-Archive: <https://x.test/a/>\r\n" +
				"Precedence: list\r\nX-Loop: crew@x.test\r\n"},
		{"notice", Block{Name: "Crew", Address: "crew@x.test", Loop: true}, "List-Id: Crew <crew.x.test>\r\nX-Loop: crew@x.test\r\n"},
		{"a member's digest", Block{Unsubscribe: "crew+unsubscribe@x.test"}, "List-Unsubscribe: <mailto:crew+unsubscribe@x.test>\r\n"},
	} {
		got, err := tc.b.OnTop([]byte(msg))
		if err != nil || string(got) != tc.want+msg {
			t.Errorf("%s:\n%s\nwant\n%s%s (%v)", tc.what, got, tc.want, msg, err)
		}
		if !strings.HasSuffix(string(got), msg) {
			t.Errorf("%s: the message changed under the block", tc.what)
		}
	}
}
