// Package searchq owns the language people search a list's archive with: its parser, the
// query it gives (Query, Term) and the words a text is searched by (Words), which the index
// in store uses too, so that what is indexed and what is looked up are normalized alike.
//
// A query is terms separated by spaces, all of which a post must match:
//
//	word            the word, in the author's own text or the subject
//	"two words"     the words next to each other, in this order
//	from:alice      the sender's name or address (from:"Alice Smith", from:alice@example.org)
//	subject:word    the subject (subject:"a phrase")
//	has:attachment  posts with a file attached
//	before:DATE     posts dated before that day (DATE is YYYY-MM-DD, UTC)
//	after:DATE      posts dated that day or later
//	in:quotes       also look in the text the author quoted (by default only their own)
//	-term           posts that do not match the term
//
// Case and accents do not matter (see Words). A word made of several (e-mail, 東京) is a
// phrase of them.
package searchq

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Field is what a term looks at.
type Field uint8

const (
	Text       Field = iota // the author's own text and the subject (and quotes, with Query.Quotes)
	From                    // the sender's name and address
	Subject                 // the subject
	Attachment              // whether a file is attached
	Before                  // the post's date is before Term.Date
	After                   // the post's date is Term.Date or later
)

// Term is one condition of a query.
type Term struct {
	Field Field
	// Words, normalized (see Words), for Text, From and Subject; more than one is a phrase:
	// the words next to each other in this order, in one text.
	Words []string
	Date  time.Time // for Before and After: the start of the day, UTC
	Not   bool      // the post must not match
}

// Phrase says whether the term's words must be found next to each other in a text, which an
// index of words cannot tell alone: more than one word, or a word longer than MaxWord runes
// (indexed in pieces).
func (t Term) Phrase() bool {
	return len(t.Words) > 1 || (len(t.Words) == 1 && utf8.RuneCountInString(t.Words[0]) > MaxWord)
}

// Query is a parsed search: every term must match.
type Query struct {
	Terms []Term
	// Quotes: text terms look into the text the author quoted too.
	Quotes bool
}

// Highlights are the words a result's lines are shown with highlighted: those of the terms
// that are looked for, not excluded.
func (q Query) Highlights() []string {
	var ws []string
	for _, t := range q.Terms {
		if !t.Not && (t.Field == Text || t.Field == Subject) {
			ws = append(ws, t.Words...)
		}
	}
	return ws
}

// Limits on a query, so that one search costs a bounded amount of work.
const (
	MaxQuery = 1000 // bytes
	MaxTerms = 20
)

// ErrEmpty is the error of a query with nothing to look for.
var ErrEmpty = errors.New("nothing to search for: give some words")

// Parse reads a query (see the package comment). Its errors are one sentence a person can act
// on.
func Parse(s string) (Query, error) {
	var q Query
	if len(s) > MaxQuery {
		return q, fmt.Errorf("the search is too long: at most %d characters", MaxQuery)
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	for rest := strings.TrimSpace(s); rest != ""; rest = strings.TrimLeft(rest, " \t\r\n") {
		var tok string
		var quoted bool
		tok, rest, quoted = next(rest)
		not := false
		if strings.HasPrefix(tok, "-") && len(tok) > 1 && !quoted {
			not, tok = true, tok[1:]
			if strings.HasPrefix(tok, `"`) { // -"a phrase"
				tok, rest, quoted = next(tok + rest)
			}
		}
		term, skip, err := parseTerm(&q, tok, quoted)
		if err != nil {
			return Query{}, err
		}
		if skip {
			continue
		}
		term.Not = not
		q.Terms = append(q.Terms, term)
		if len(q.Terms) > MaxTerms {
			return Query{}, fmt.Errorf("the search has too many terms: at most %d", MaxTerms)
		}
	}
	for _, t := range q.Terms {
		if !t.Not {
			return q, nil
		}
	}
	if len(q.Terms) == 0 {
		return Query{}, ErrEmpty
	}
	return q, nil // only exclusions: every post that matches none of them
}

// next cuts the first token off s: a "quoted phrase" (to the closing quote, or the end) or a
// run up to white space, where a field's quoted value (from:"a b") stays with its field.
func next(s string) (tok, rest string, quoted bool) {
	if strings.HasPrefix(s, `"`) {
		body, after, _ := strings.Cut(s[1:], `"`)
		return body, after, true
	}
	end := strings.IndexAny(s, " \t\r\n")
	if end < 0 {
		end = len(s)
	}
	tok, rest = s[:end], s[end:]
	if i := strings.Index(tok, `:"`); i > 0 {
		body, after, _ := strings.Cut(s[i+2:], `"`)
		return tok[:i+1] + body, after, false
	}
	return tok, rest, false
}

// parseTerm reads one token; skip is true for a token that sets an option or has no words.
func parseTerm(q *Query, tok string, quoted bool) (t Term, skip bool, err error) {
	if !quoted {
		if name, value, ok := strings.Cut(tok, ":"); ok && value != "" {
			switch strings.ToLower(name) {
			case "from":
				return words(From, value)
			case "subject":
				return words(Subject, value)
			case "has":
				switch strings.ToLower(value) {
				case "attachment", "attachments", "file", "files":
					return Term{Field: Attachment}, false, nil
				}
				return t, false, fmt.Errorf("has:%s is not something a post can have: try has:attachment", value)
			case "before", "after":
				d, err := parseDate(value)
				if err != nil {
					return t, false, fmt.Errorf("%s:%s: %w", name, value, err)
				}
				f := Before
				if strings.EqualFold(name, "after") {
					f = After
				}
				return Term{Field: f, Date: d}, false, nil
			case "in":
				switch strings.ToLower(value) {
				case "quotes", "quoted", "all":
					q.Quotes = true
				case "own":
					q.Quotes = false
				default:
					return t, false, fmt.Errorf("in:%s is not known: in:quotes looks into quoted text too", value)
				}
				return t, true, nil
			}
		}
	}
	return words(Text, tok)
}

// words makes a term of the words of s; a token without any (punctuation) is skipped.
func words(f Field, s string) (Term, bool, error) {
	ws := WordList(s)
	if len(ws) == 0 {
		return Term{}, true, nil
	}
	return Term{Field: f, Words: ws}, false, nil
}

// parseDate reads YYYY-MM-DD (or YYYY/MM/DD, as Gmail writes it), YYYY-MM or YYYY.
func parseDate(s string) (time.Time, error) {
	s = strings.ReplaceAll(s, "/", "-")
	for _, layout := range []string{"2006-01-02", "2006-1-2", "2006-01", "2006"} {
		if d, err := time.Parse(layout, s); err == nil {
			return d, nil
		}
	}
	return time.Time{}, errors.New("not a date: write it as YYYY-MM-DD")
}
