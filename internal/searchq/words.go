package searchq

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxWord is the longest word, in runes, the index keeps whole. A longer run of letters (a
// hash, a base64 line) is kept as pieces of MaxWord runes starting every MaxWord/2 runes, so
// that any part of it up to MaxWord/2 runes long lies inside one piece.
const MaxWord = 32

// Words calls fn with each word of s, normalized: lower case, accents and other combining
// marks removed (café and CAFE are both "cafe"), so that a search finds what people meant
// whatever the case and accents they typed. A word is a run of letters and digits; each
// character of a script written without spaces between words (Han, kana, Thai …) is a word
// of its own, and a phrase of them is checked against the text (see Term). A word longer than
// MaxWord runes comes in pieces (see MaxWord). Normalizing one character never depends on its
// neighbours, so a piece of text that another contains gives words that the other's words
// contain: IMAP's substring search is narrowed by the index on that ground.
func Words(s string, fn func(w string)) {
	WordBytes(s, func(w []byte) { fn(string(w)) })
}

// WordBytes is Words giving each word as bytes that are valid only during the call (looking a
// word up in a map by string(w) then costs no copy).
func WordBytes(s string, fn func(w []byte)) {
	scan(s, func(w []byte, _, _ int) { fn(w) })
}

// scan is WordBytes telling also where in s the run of letters each word comes from begins and
// ends (every piece of a long run tells the whole run).
func scan(s string, fn func(w []byte, start, end int)) {
	var (
		buf    []byte
		starts []int // where each rune of buf begins
		from   = -1  // where the run begins in s
		at     int   // where the rune being read begins in s
	)
	flush := func() {
		n := len(starts)
		defer func() { from = -1 }()
		switch {
		case n == 0:
			return
		case n <= MaxWord:
			fn(buf, from, at)
		default:
			end := func(i int) int {
				if i == n {
					return len(buf)
				}
				return starts[i]
			}
			for i := 0; ; i += MaxWord / 2 {
				if i+MaxWord >= n {
					fn(buf[starts[n-MaxWord]:], from, at)
					break
				}
				fn(buf[starts[i]:end(i+MaxWord)], from, at)
			}
		}
		buf, starts = buf[:0], starts[:0]
	}
	add := func(r rune) {
		starts = append(starts, len(buf))
		buf = utf8.AppendRune(buf, r)
	}
	begin := func(i int) {
		if from < 0 {
			from = i
		}
	}
	for i, r := range s {
		at = i
		switch {
		case r < utf8.RuneSelf:
			switch {
			case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
				begin(i)
				starts = append(starts, len(buf))
				buf = append(buf, byte(r))
			case 'A' <= r && r <= 'Z':
				begin(i)
				starts = append(starts, len(buf))
				buf = append(buf, byte(r+'a'-'A'))
			default:
				flush()
			}
		case unicode.IsMark(r):
			// Part of the word it follows; dropped by folding.
		case unscripted(r):
			flush()
			begin(i)
			fold(r, add)
			at = i + utf8.RuneLen(r)
			flush()
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			begin(i)
			fold(r, add)
		default:
			flush()
		}
	}
	at = len(s)
	flush()
}

// Spans are where in line the words of words (normalized, as Query.Highlights gives them)
// are, as byte offsets [start, end), in order: what a reader of results shows highlighted.
func Spans(line string, words []string) [][2]int {
	want := map[string]bool{}
	for _, w := range words {
		want[w] = true
	}
	var out [][2]int
	scan(line, func(w []byte, start, end int) {
		if want[string(w)] && (len(out) == 0 || out[len(out)-1] != [2]int{start, end}) {
			out = append(out, [2]int{start, end})
		}
	})
	return out
}

// WordList returns the words of s (see Words).
func WordList(s string) []string {
	var ws []string
	Words(s, func(w string) { ws = append(ws, w) })
	return ws
}

// Fold returns s's words joined by single spaces, for comparing a phrase with a text.
func Fold(s string) string {
	var b strings.Builder
	Words(s, func(w string) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
	})
	return b.String()
}

// fold gives r in lower case without its combining marks (NFD, marks dropped) to add.
func fold(r rune, add func(rune)) {
	r = unicode.ToLower(r)
	if r < utf8.RuneSelf {
		add(r)
		return
	}
	var buf [utf8.UTFMax]byte
	n := utf8.EncodeRune(buf[:], r)
	if norm.NFD.IsNormal(buf[:n]) {
		add(r)
		return
	}
	for _, d := range norm.NFD.String(string(buf[:n])) {
		if !unicode.IsMark(d) {
			add(unicode.ToLower(d))
		}
	}
}

// unscripted says whether r belongs to a script written without spaces between words.
func unscripted(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Thai, unicode.Lao,
		unicode.Khmer, unicode.Myanmar, unicode.Tibetan)
}
