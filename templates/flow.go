package templates

import (
	"strings"
	"unicode/utf8"
)

// FlowWidth is the length Flow aims for; MaxLine the longest line it writes unless one word is
// longer (RFC 3676 §4.2: lines SHOULD be no more than 78 characters).
const (
	FlowWidth = 72
	MaxLine   = 78
)

// Flow turns a rendered notice into format=flowed text (RFC 3676) after every value is filled
// in: a line longer than FlowWidth is broken at spaces into soft line breaks (each ending in a
// space), which a reader's mail program joins again and wraps to its screen; every other line
// break stays hard. Trailing spaces are removed from hard breaks (§4.2), the signature
// separator "-- " excepted (§4.3), and lines starting with a space, ">" or "From " are
// space-stuffed (§4.4), so indentation survives. text ends in a newline; so does the result.
func Flow(text string) string {
	var b strings.Builder
	text = strings.TrimSuffix(text, "\n")
	for line := range strings.SplitSeq(text, "\n") {
		if line != "-- " {
			line = strings.TrimRight(line, " \t\r")
		}
		for _, piece := range wrap(line) {
			if strings.HasPrefix(piece, " ") || strings.HasPrefix(piece, ">") || strings.HasPrefix(piece, "From ") {
				b.WriteByte(' ')
			}
			b.WriteString(piece)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// wrap breaks line into pieces of at most FlowWidth characters where it can, each but the
// last ending in the space it was broken at. A word longer than that stays whole.
func wrap(line string) []string {
	var pieces []string
	for utf8.RuneCountInString(line) > FlowWidth {
		cut := breakAt(line)
		if cut < 0 {
			break
		}
		pieces = append(pieces, line[:cut+1])
		line = line[cut+1:]
	}
	return append(pieces, line)
}

// breakAt is the byte index of the space to break line at: the last one within FlowWidth
// characters after its indentation, or else the first one after; -1 when there is none.
func breakAt(line string) int {
	indent := len(line) - len(strings.TrimLeft(line, " "))
	last, n := -1, 0
	for i, r := range line {
		if n >= FlowWidth {
			break
		}
		n++
		if r == ' ' && i >= indent && i > 0 && line[i-1] != ' ' {
			last = i
		}
	}
	if last >= 0 {
		return last
	}
	for i := indent; i < len(line); i++ {
		if line[i] == ' ' && i+1 < len(line) {
			return i
		}
	}
	return -1
}

// FlowDelSp is Flow for a part sent with "format=flowed; delsp=yes" (RFC 3676 §4.2), where
// a reader deletes the space before each soft line break when it joins the lines: a line is
// broken at a space by keeping that space and adding one, and a word longer than FlowWidth (a
// long URL, a run of CJK text) is broken inside, so that no line is longer than MaxLine
// characters. A mail program that does not know format=flowed shows such a word broken.
func FlowDelSp(text string) string {
	var b strings.Builder
	text = strings.TrimSuffix(text, "\n")
	for line := range strings.SplitSeq(text, "\n") {
		if line != "-- " {
			line = strings.TrimRight(line, " \t\r")
		}
		pieces := wrap(line)
		for i, piece := range pieces {
			soft := i < len(pieces)-1 // ends in the space it was broken at
			cs := chunks(piece)
			for j, chunk := range cs {
				if strings.HasPrefix(chunk, " ") || strings.HasPrefix(chunk, ">") || strings.HasPrefix(chunk, "From ") {
					b.WriteByte(' ')
				}
				b.WriteString(chunk)
				if soft || j < len(cs)-1 {
					b.WriteByte(' ') // deleted by the reader (delsp=yes)
				}
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}

// chunks cuts piece into runs of at most FlowWidth characters (a trailing space not counted).
func chunks(piece string) []string {
	if utf8.RuneCountInString(strings.TrimSuffix(piece, " ")) <= FlowWidth {
		return []string{piece}
	}
	var out []string
	n, start := 0, 0
	for i := range piece {
		if n == FlowWidth && strings.TrimSpace(piece[i:]) != "" {
			out = append(out, piece[start:i])
			start, n = i, 0
		}
		n++
	}
	return append(out, piece[start:])
}
