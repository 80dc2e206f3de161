package listcopy

import (
	"bytes"
	"fmt"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"

	"crewmail/internal/mailaddr"
	"crewmail/internal/mailtest"
	"crewmail/internal/rawmsg"
	"crewmail/store"
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

// TestHideAuthorCorpus: on a list that hides addresses, the copy of each real message of the
// corpus names its author nowhere in the header (but in the Message-IDs that thread it), comes
// From the list in her name with Reply-To the private reply address, and keeps the body byte
// for byte.
func TestHideAuthorCorpus(t *testing.T) {
	l := store.List{Address: "crew@lists.example.test", Name: "Garden crew", HideAddresses: true}
	const relay = "crew+p-abc@lists.example.test"
	n := 0
	for _, f := range mailtest.Corpus(t, "threads", "mime") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		raw := mailtest.SMTPForm(b)
		th, err := rawmsg.ReadHeader(raw)
		if err != nil {
			continue
		}
		from, err := mail.ParseAddress(th.Get("From"))
		if err != nil {
			continue
		}
		author, err := mailaddr.Normalize(from.Address)
		if err != nil {
			continue
		}
		n++
		got, err := Post(l, store.Post{From: author}, raw, Block{Name: l.Name, Address: l.Address, Loop: true}, relay)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		head, body, _ := bytes.Cut(got, []byte("\r\n\r\n"))
		_, want, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
		if !bytes.Equal(body, want) {
			t.Errorf("%s: the body changed", filepath.Base(f))
		}
		gh, err := rawmsg.ReadHeader(got)
		if err != nil {
			t.Fatalf("%s: %v\n%s", filepath.Base(f), err, head)
		}
		for fs := gh.Fields(); fs.Next(); {
			switch strings.ToLower(fs.Key()) {
			case "message-id", "in-reply-to", "references":
				continue
			}
			if strings.Contains(strings.ToLower(fs.Value()), author) {
				t.Errorf("%s: %s names the author: %s", filepath.Base(f), fs.Key(), fs.Value())
			}
		}
		// Nothing else is added, nor any field written twice.
		for fs := gh.Fields(); fs.Next(); {
			switch k := fs.Key(); k {
			case "From", "Reply-To", "List-Id", "X-Loop":
			default:
				if len(gh.Values(k)) > len(th.Values(k)) {
					t.Errorf("%s: %d %s fields, %d before", filepath.Base(f), len(gh.Values(k)), k, len(th.Values(k)))
				}
			}
		}
		if v := gh.Get("Reply-To"); v != "<"+relay+">" {
			t.Errorf("%s: Reply-To %q", filepath.Base(f), v)
		}
		v := gh.Get("From")
		if dec, err := new(mime.WordDecoder).DecodeHeader(v); err == nil {
			v = dec
		}
		if !strings.Contains(v, " via Garden crew") || !strings.HasSuffix(v, "<crew@lists.example.test>") {
			t.Errorf("%s: From %q", filepath.Base(f), v)
		}
	}
	if n < 50 {
		t.Errorf("only %d corpus messages had a readable From", n)
	}
}

// BenchmarkPost measures writing one member's list copy of a typical post (a dozen trace and
// header fields, 4 KB of text): as it came, and on a list that hides addresses, where the
// header is read, stripped of the author's address and written again for every copy.
func BenchmarkPost(b *testing.B) {
	var raw bytes.Buffer
	raw.WriteString("Authentication-Results: lists.example.test; spf=pass smtp.mailfrom=alice@example.test\r\n")
	for i := range 6 {
		fmt.Fprintf(&raw, "Received: from mx%d.example.test (mx%d.example.test [192.0.2.%d])\r\n\tby lists.example.test with ESMTPS id x%d; Wed, 25 Nov 2026 10:00:00 +0000\r\n", i, i, i, i)
	}
	raw.WriteString("From: Alice Liddell <alice@example.test>\r\nTo: crew@lists.example.test\r\nSubject: Beans\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <beans@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	raw.WriteString(strings.Repeat("Spare beans by the shed, and peas for whoever wants them.\r\n", 70))
	block := Block{Name: "Garden crew", Address: "crew@lists.example.test", Post: true, Help: "crew+help@lists.example.test", Loop: true}
	for _, hide := range []bool{false, true} {
		l := store.List{Address: "crew@lists.example.test", Name: "Garden crew", HideAddresses: hide}
		b.Run(map[bool]string{false: "as-it-came", true: "hide-addresses"}[hide], func(b *testing.B) {
			b.SetBytes(int64(raw.Len()))
			for b.Loop() {
				if _, err := Post(l, store.Post{From: "alice@example.test"}, raw.Bytes(), block, "crew+p-abc@lists.example.test"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
