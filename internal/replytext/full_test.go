package replytext

import (
	"strings"
	"testing"
)

func TestReadSplitsQuotesAndKeepsEverything(t *testing.T) {
	msg := "From: a@x.test\r\nSubject: Re: plans\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\n" +
		"Yes, Saturday.\r\n\r\nOn Fri, 1 May 2026, Bob wrote:\r\n> Shall we dig on Saturday?\r\n> Or Sunday?\r\n\r\nAnd bring gloves.\r\n-- \r\nAlice\r\n" +
		"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=plan.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n"
	f, err := Read([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	want := []Block{
		{false, "Yes, Saturday."},
		{true, "On Fri, 1 May 2026, Bob wrote:\n> Shall we dig on Saturday?\n> Or Sunday?"},
		{false, "And bring gloves.\n-- \nAlice"},
	}
	if len(f.Blocks) != len(want) {
		t.Fatalf("blocks %+v, want %+v", f.Blocks, want)
	}
	for i := range want {
		if f.Blocks[i] != want[i] {
			t.Errorf("block %d: %+v, want %+v", i, f.Blocks[i], want[i])
		}
	}
	if len(f.Attachments) != 1 || f.Attachments[0].Name != "plan.pdf" || f.Attachments[0].Type != "application/pdf" || f.Attachments[0].Size != 5 ||
		len(f.Attachments[0].Pos) != 1 || f.Attachments[0].Pos[0] != 1 {
		t.Errorf("attachments %+v", f.Attachments)
	}
}

func TestReadHTMLOnlyIsText(t *testing.T) {
	msg := "From: a@x.test\r\nContent-Type: text/html\r\n\r\n<p>Hello <b>all</b><script>alert(1)</script></p><img src=\"http://evil.test/x.png\">"
	f, err := Read([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, b := range f.Blocks {
		all = append(all, b.Text)
	}
	text := strings.Join(all, "\n")
	if !strings.Contains(text, "Hello all") || strings.Contains(text, "alert") || strings.Contains(text, "<") {
		t.Errorf("text of an HTML post: %q", text)
	}
}

// FuzzRead feeds Read arbitrary messages (seed corpus in testdata/fuzz/FuzzRead): it must not
// panic, its blocks are never blank, and every file has a name and names its
// place in the message.
func FuzzRead(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg []byte) {
		got, err := Read(msg)
		if err != nil {
			if len(got.Blocks) > 0 || len(got.Attachments) > 0 {
				t.Errorf("Read returned %+v with the error %v", got, err)
			}
			return
		}
		for i, b := range got.Blocks {
			if strings.TrimSpace(b.Text) == "" {
				t.Errorf("block %d is blank: %q", i, b.Text)
			}
		}
		for _, a := range got.Attachments {
			if a.Pos == nil || a.Name == "" {
				t.Errorf("file %+v has no place or no name", a)
			}
		}
	})
}
