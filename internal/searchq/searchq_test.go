package searchq

import (
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestWords(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"Hello, World!", []string{"hello", "world"}},
		{"Café CAFÉ cafe\u0301", []string{"cafe", "cafe", "cafe"}},
		{"e-mail x@y.org", []string{"e", "mail", "x", "y", "org"}},
		{"Ελληνικά Русский", []string{"ελληνικα", "русскии"}},
		{"東京タワー", []string{"東", "京", "タ", "ワ", "ー"}},
		{"Straße naïve Øre", []string{"straße", "naive", "øre"}},
		{"v1.2.3 ___", []string{"v1", "2", "3"}},
		{"", nil},
	} {
		if got := WordList(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Words(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestLongWordsComeInOverlappingPieces: any part of a long run up to MaxWord/2 runes lies in
// one piece, which IMAP's substring search relies on.
func TestLongWordsComeInOverlappingPieces(t *testing.T) {
	long := strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789", 3) // 108 runes
	pieces := WordList(long)
	for _, p := range pieces {
		if len(p) != MaxWord {
			t.Errorf("piece %q is %d runes, want %d", p, len(p), MaxWord)
		}
	}
	for i := 0; i+MaxWord/2 <= len(long); i++ {
		part := long[i : i+MaxWord/2]
		found := false
		for _, p := range pieces {
			found = found || strings.Contains(p, part)
		}
		if !found {
			t.Fatalf("%q (at %d) is in no piece of %q", part, i, pieces)
		}
	}
}

func TestParse(t *testing.T) {
	day := func(s string) time.Time { d, _ := time.Parse("2006-01-02", s); return d }
	for _, c := range []struct {
		in   string
		want Query
	}{
		{"budget", Query{Terms: []Term{{Field: Text, Words: []string{"budget"}}}}},
		{"Budget MEETING", Query{Terms: []Term{{Field: Text, Words: []string{"budget"}}, {Field: Text, Words: []string{"meeting"}}}}},
		{`"next week" café`, Query{Terms: []Term{{Field: Text, Words: []string{"next", "week"}}, {Field: Text, Words: []string{"cafe"}}}}},
		{`from:alice@example.org`, Query{Terms: []Term{{Field: From, Words: []string{"alice", "example", "org"}}}}},
		{`from:"Alice Smith" picnic`, Query{Terms: []Term{{Field: From, Words: []string{"alice", "smith"}}, {Field: Text, Words: []string{"picnic"}}}}},
		{`subject:"road trip"`, Query{Terms: []Term{{Field: Subject, Words: []string{"road", "trip"}}}}},
		{`has:attachment photos`, Query{Terms: []Term{{Field: Attachment}, {Field: Text, Words: []string{"photos"}}}}},
		{`before:2024-03-01 after:2024/01/15 x`, Query{Terms: []Term{{Field: Before, Date: day("2024-03-01")}, {Field: After, Date: day("2024-01-15")}, {Field: Text, Words: []string{"x"}}}}},
		{`in:quotes recipe`, Query{Quotes: true, Terms: []Term{{Field: Text, Words: []string{"recipe"}}}}},
		{`tea -coffee -"green tea" -from:bob`, Query{Terms: []Term{{Field: Text, Words: []string{"tea"}}, {Field: Text, Words: []string{"coffee"}, Not: true}, {Field: Text, Words: []string{"green", "tea"}, Not: true}, {Field: From, Words: []string{"bob"}, Not: true}}}},
		{`re: hello`, Query{Terms: []Term{{Field: Text, Words: []string{"re"}}, {Field: Text, Words: []string{"hello"}}}}},
		{`"unterminated phrase`, Query{Terms: []Term{{Field: Text, Words: []string{"unterminated", "phrase"}}}}},
		{`-solo`, Query{Terms: []Term{{Field: Text, Words: []string{"solo"}, Not: true}}}},
		{`e-mail`, Query{Terms: []Term{{Field: Text, Words: []string{"e", "mail"}}}}},
	} {
		got, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Parse(%q) =\n %+v, want\n %+v", c.in, got, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"", "   ", "!!! ...", "has:wings", "before:yesterday", "in:spam", strings.Repeat("a ", MaxQuery), strings.Repeat("w ", MaxTerms+1)} {
		if q, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", in, q)
		}
	}
}

func TestPhraseAndHighlights(t *testing.T) {
	q, err := Parse(`picnic "next week" -rain subject:park ` + strings.Repeat("z", MaxWord+1))
	if err != nil {
		t.Fatal(err)
	}
	if q.Terms[0].Phrase() || !q.Terms[1].Phrase() || !q.Terms[4].Phrase() {
		t.Errorf("Phrase() wrong for %+v", q.Terms)
	}
	if got, want := q.Highlights(), []string{"picnic", "next", "week", "park"}; !reflect.DeepEqual(got[:4], want) {
		t.Errorf("Highlights = %q, want %q first", got, want)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`budget "next week" from:"Alice Smith" -coffee has:attachment before:2024-01-02 in:quotes`, `東京 café`, `-"`, `from:"`, `a:b:c`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s)
		if err != nil {
			return
		}
		if len(q.Terms) == 0 || len(q.Terms) > MaxTerms {
			t.Fatalf("Parse(%q) gave %d terms", s, len(q.Terms))
		}
		for _, term := range q.Terms {
			for _, w := range term.Words {
				if w == "" || Fold(w) != w {
					t.Fatalf("Parse(%q): word %q is not normalized", s, w)
				}
			}
		}
	})
}

func FuzzWords(f *testing.F) {
	f.Add("Café 東京 "+strings.Repeat("x", 40), 3, 20)
	f.Fuzz(func(t *testing.T, s string, i, j int) {
		s = strings.ToValidUTF8(s, "")
		if i < 0 || j < i || j > len(s) || !utf8.RuneStart(s[min(i, len(s)-1)]) && i < len(s) || j < len(s) && !utf8.RuneStart(s[j]) {
			return
		}
		// The words of a piece of a text each lie inside one of the text's words (what
		// IMAP's substring search narrowed by the index relies on).
		whole := WordList(s)
		for _, w := range WordList(s[i:j]) {
			if utf8.RuneCountInString(w) > MaxWord/2 {
				continue
			}
			found := false
			for _, x := range whole {
				found = found || strings.Contains(x, w)
			}
			if !found {
				t.Fatalf("word %q of %q is in no word of %q: %q", w, s[i:j], s, whole)
			}
		}
	})
}

func TestSpans(t *testing.T) {
	line := "Le CAFÉ est fermé; café crème à 東京, cafe\u0301!"
	var got []string
	for _, sp := range Spans(line, []string{"cafe", "京"}) {
		got = append(got, line[sp[0]:sp[1]])
	}
	want := []string{"CAFÉ", "café", "京", "cafe\u0301"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Spans = %q, want %q", got, want)
	}
}
