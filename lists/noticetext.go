package lists

import (
	"reflect"
	"strings"

	"crewmail/internal/safetext"
	"crewmail/templates"
)

// maxExcerptLines and maxExcerptChars bound how much of a post the question to confirm it
// shows: enough to recognize it, never the whole of it.
const (
	maxExcerptLines = 10
	maxExcerptChars = 160
)

// maxPostChars bounds how much of a post's own text is read before the write transaction:
// enough for its excerpt and to tell a stray command.
const maxPostChars = maxExcerptLines * maxExcerptChars

// firstLines are the first max lines of text.
func firstLines(text string, max int) []string {
	var lines []string
	for l := range strings.Lines(text) {
		if lines = append(lines, strings.TrimRight(l, "\r\n")); len(lines) == max {
			break
		}
	}
	return lines
}

// excerpt is how a post begins, for the question whether its author sent it and the
// moderators' mail: the first of the author's own lines (as readBody read them: quotes and
// signature left out), empty ones dropped, each shortened to maxExcerptChars.
func excerpt(own []string) []string {
	var lines []string
	for _, l := range own {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		if r := []rune(l); len(r) > maxExcerptChars {
			l = string(r[:maxExcerptChars]) + "…"
		}
		if lines = append(lines, l); len(lines) == maxExcerptLines {
			break
		}
	}
	return lines
}

// foldNotice is d with every text in it made one safe line (safetext.Line): subjects, names
// and reasons come from senders, and a line break (an RFC 2047 encoded "=0A") or a
// bidirectional override in one would write the sender's words into crewmail's own notice,
// as if crewmail said them. Every string d holds is folded, in a field, a slice or a struct
// in a slice, so a field added to templates.Notice is folded without anyone remembering to.
// The slices are copied: the caller's stay as they were.
func foldNotice(d templates.Notice) templates.Notice {
	foldStrings(reflect.ValueOf(&d).Elem())
	return d
}

func foldStrings(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(safetext.Line(v.String()))
	case reflect.Struct:
		for i := range v.NumField() {
			foldStrings(v.Field(i))
		}
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		folded := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(folded, v)
		for i := range folded.Len() {
			foldStrings(folded.Index(i))
		}
		v.Set(folded)
	}
}
