package templates

import (
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// unflow reads format=flowed text as a mail program does (RFC 3676 §4.1, §4.4): it removes
// the stuffing and joins each line ending in a space with the next.
func unflow(text string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(strings.TrimSuffix(text, "\n"), "\n") {
		line = strings.TrimPrefix(line, " ")
		b.WriteString(line)
		if !strings.HasSuffix(line, " ") || line == "-- " {
			b.WriteString("\n")
		}
	}
	return b.String()
}

func TestFlowKeepsTheTextAndWrapsIt(t *testing.T) {
	long := strings.Repeat("word ", 40) + "end"
	in := "Hello,\n\n" + long + "\n\n  indented line   \nFrom here\n> not a quote\n-- \nsig\n"
	out := Flow(in)
	for line := range strings.SplitSeq(out, "\n") {
		if utf8.RuneCountInString(line) > MaxLine {
			t.Errorf("line over %d: %q", MaxLine, line)
		}
	}
	for _, want := range []string{"\n   indented line\n", "\n From here\n", "\n > not a quote\n", "\n-- \nsig\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("flowed text lacks %q:\n%s", want, out)
		}
	}
	if got, want := unflow(out), strings.Replace(in, "indented line   ", "indented line", 1); got != want {
		t.Errorf("unflowed:\n%q\nwant\n%q", got, want)
	}
}

// long is a notice whose every text is 60 characters long: addresses and list names as long
// as real ones get, so that no notice's line grows past MaxLine once they are filled in.
func long() Notice {
	d := data
	v := reflect.ValueOf(&d).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case f.Kind() == reflect.String && v.Type().Field(i).Name == "ListName":
			f.SetString(strings.Repeat("Gardening crew of the allotments ", 2)[:60])
		case f.Kind() == reflect.String && f.String() != "" && !strings.Contains(f.String(), " "):
			local := strings.Repeat("x", 60-len("@allotments.example.org"))
			f.SetString(local + "@allotments.example.org")
		}
	}
	d.ListName = d.ListName[:60]
	return d
}

// TestNoNoticeLineOver78 renders every notice with 60-character addresses and list name and
// measures the flowed result, as a member's mail program gets it.
func TestNoNoticeLineOver78(t *testing.T) {
	s, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	names, _ := fs.Glob(builtin, "text/*.txt")
	d := long()
	if len(d.Confirm) != 60 || len(d.ListName) != 60 {
		t.Fatalf("test data: %q %q", d.Confirm, d.ListName)
	}
	for _, name := range names {
		name = strings.TrimSuffix(filepath.Base(name), ".txt")
		if name == "digest" {
			continue
		}
		_, body, err := s.Render(name, d)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(Flow(body), "\n") {
			if n := utf8.RuneCountInString(line); n > MaxLine {
				t.Errorf("%s line %d has %d characters: %q", name, i+1, n, line)
			}
		}
	}
}

// TestNoticesSpeakPlainly: no dot-leader tables that fall apart on a phone, and no words of
// mail authentication a member cannot act on.
func TestNoticesSpeakPlainly(t *testing.T) {
	s, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	names, _ := fs.Glob(builtin, "text/*.txt")
	d := data
	d.Reason = "(dmarc=none, spf=none)"
	for _, name := range names {
		name = strings.TrimSuffix(filepath.Base(name), ".txt")
		switch name {
		case "digest", "bounce-paused", "join-declined", "post-rejected", "goodbye", "moderation":
			continue // their Reason is someone's own words: a provider's, an owner's
		case "nothing-done", "administrivia":
			continue // their Reason is ours, in words: what was asked, what was found
		}
		subject, body, err := s.Render(name, d)
		if err != nil {
			t.Fatal(err)
		}
		text := subject + "\n" + body
		for _, bad := range []string{" .....", "DKIM", "SPF", "DMARC", "dmarc", "spf="} {
			if strings.Contains(text, bad) {
				t.Errorf("%s says %q:\n%s", name, bad, text)
			}
		}
	}
}

// TestFlowDelSp checks that every line is at most MaxLine characters and that joining the lines
// as RFC 3676 says (§4.2 with delsp=yes, §4.4 unstuffing) gives the text back.
func TestFlowDelSp(t *testing.T) {
	long := "Reply: https://example.org/" + strings.Repeat("abcdefghij", 15) + "?q=1 and more words after it"
	for _, text := range []string{
		"short line\n",
		strings.Repeat("word ", 40) + "end\n\nnext paragraph\n",
		long + "\n",
		strings.Repeat("東京の天気は晴れです。", 20) + "\n",
		"> not a quote " + strings.Repeat("x", 100) + "\nFrom here on\n",
		"-- \nsig\n",
	} {
		got := FlowDelSp(text)
		for l := range strings.SplitSeq(strings.TrimSuffix(got, "\n"), "\n") {
			if n := utf8.RuneCountInString(l); n > MaxLine {
				t.Errorf("line of %d characters: %q", n, l)
			}
		}
		if back := unflowDelSp(got); back != text {
			t.Errorf("FlowDelSp(%q) = %q, which reads back as %q", text, got, back)
		}
	}
}

// unflowDelSp joins format=flowed; delsp=yes text (RFC 3676 §4.2, §4.4), as a reader does.
func unflowDelSp(text string) string {
	var b strings.Builder
	for l := range strings.SplitSeq(strings.TrimSuffix(text, "\n"), "\n") {
		l = strings.TrimPrefix(l, " ")
		if strings.HasSuffix(l, " ") && l != "-- " {
			b.WriteString(l[:len(l)-1])
			continue
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}
