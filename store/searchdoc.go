package store

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"time"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"crewmail/internal/mimetree"
	"crewmail/internal/replytext"
	"crewmail/internal/searchq"
)

// SearchDoc is what the search index keeps of one archived post: the texts it is searched by,
// and what results are sorted and filtered on. NewSearchDoc makes one from the post's bytes,
// outside the write transaction; For adds what the archive decided.
type SearchDoc struct {
	Thread   uint64    // the thread the post was archived in (merges are followed when searching)
	Date     time.Time // the author's Date, else when it was received
	FromAddr string
	FromName string
	Subject  string
	Own      string // the author's own text (replytext)
	Quoted   string // the rest of the text: quotes, attributions, signature
	// Attachment: a file came with the post.
	Attachment bool
	// Other are the words (searchq.Words) of the rest of what IMAP's SEARCH TEXT looks into —
	// every header field, every text part as sent, the headers of forwarded messages — that
	// the fields above do not have, space-separated. They are indexed for IMAP only, so that
	// the index narrows a substring search to a superset of the posts it matches.
	Other string
}

// Hit is a post that matched a search.
type Hit struct {
	Seq    uint64
	Thread uint64 // the conversation, where merges have led it
	Date   time.Time
	// Lines are the post's lines (subject first, then its text) that hold a word looked for,
	// at most MaxHitLines, each cut to MaxHitLine characters, for showing with the words
	// (Query.Highlights) highlighted.
	Lines []string
}

// Bounds on a hit's lines.
const (
	MaxHitLines = 3
	MaxHitLine  = 200
)

// NewSearchDoc reads what the index keeps of a post from its bytes (a message that cannot be
// read gives what could be read). It parses the message: call it before the write
// transaction, and For in it.
func NewSearchDoc(raw []byte) SearchDoc {
	var d SearchDoc
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err == nil {
		mh := mail.Header{Header: gomessage.Header{Header: h}}
		if from, err := mh.AddressList("From"); err == nil && len(from) > 0 {
			d.FromName, d.FromAddr = from[0].Name, from[0].Address
		}
		d.Subject, _ = mh.Subject()
		if t, err := mh.Date(); err == nil {
			d.Date = t.UTC()
		}
	}
	own, quoted, files, err := replytext.Split(raw)
	if err == nil {
		d.Own, d.Quoted, d.Attachment = own, quoted, len(files) > 0
	}
	d.Other = otherWords(raw, d)
	return d
}

// For sets what the archive decided about post p: its thread, date, sender and subject as
// recorded.
func (d SearchDoc) For(p Post) SearchDoc {
	d.Thread = p.Origin
	if d.Thread == 0 {
		d.Thread = p.Thread
	}
	if !p.Date.IsZero() {
		d.Date = p.Date
	} else if d.Date.IsZero() {
		d.Date = p.Received
	}
	if p.From != "" {
		d.FromAddr = p.From
	}
	if p.Subject != "" {
		d.Subject = p.Subject
	}
	return d
}

// otherWords are the words of what IMAP's SEARCH TEXT reads in raw (imapd's matchText: the
// decoded text/* and message/* leaves mimetree finds, and the header fields of every part)
// that d's fields do not have.
func otherWords(raw []byte, d SearchDoc) string {
	have := map[string]bool{}
	for _, s := range []string{d.Own, d.Quoted, d.Subject, d.FromName, d.FromAddr} {
		searchq.WordBytes(s, func(w []byte) {
			if !have[string(w)] {
				have[string(w)] = true
			}
		})
	}
	var out []byte
	add := func(s string) {
		searchq.WordBytes(s, func(w []byte) {
			if !have[string(w)] {
				have[string(w)] = true
				if len(out) > 0 {
					out = append(out, ' ')
				}
				out = append(out, w...)
			}
		})
	}
	func() {
		defer func() { _ = recover() }() // what was read before a panic stays
		w := mimetree.Walker{Limits: mimetree.Default, Leaf: func(p *mimetree.Part, body io.Reader) error {
			if !strings.HasPrefix(p.Type, "text/") && !strings.HasPrefix(p.Type, "message/") {
				return nil
			}
			e, _ := gomessage.New(p.Header, body)
			if e == nil {
				return nil
			}
			b, err := io.ReadAll(e.Body)
			if err != nil && len(b) == 0 {
				return nil
			}
			add(string(b))
			return nil
		}}
		root, err := w.Walk(raw)
		if root == nil {
			return
		}
		_ = err
		var headers func(p *mimetree.Part)
		headers = func(p *mimetree.Part) {
			fields := p.Header.Fields()
			for fields.Next() {
				v, _ := fields.Text()
				add(v)
			}
			for _, c := range p.Children {
				headers(c)
			}
		}
		headers(root)
	}()
	return string(out)
}

// What another backend's index (store/postgres) needs to keep and answer as this file's does:
// the same keys for the same words, the same check of a post against a query, the same
// lines, and the document in the encoding a copy carries (RecSearchDoc).

// Encode is d as the bbolt index stores it and a copy carries it.
func (d SearchDoc) Encode() []byte {
	v, _ := encodeDoc(d)
	return v
}

// DecodeSearchDoc reads what Encode wrote.
func DecodeSearchDoc(v []byte) (SearchDoc, error) { return decodeDoc(v) }

// Terms are the keys d is found under, each once: a field's letter followed by a word of that
// field (searchq.Words), for the author's own text, the quoted text, the subject and the
// sender; the attachment field's letter alone when a file came with the post. Other's words
// are not among them (SearchSubstrings reads them).
func (d SearchDoc) Terms() []string {
	terms := docTerms(d)
	for i, k := range terms {
		terms[i] = strings.TrimSuffix(k, "\x00")
	}
	return terms
}

// TermKeys are the keys (as Terms makes them) a post with word w for term t is found under:
// it matches when it has any of them. w is one of t's words ("" for has:attachment); quotes is
// Query.Quotes.
func TermKeys(t searchq.Term, quotes bool, w string) []string {
	fields := termFields(t, quotes)
	keys := make([]string, len(fields))
	for i := range len(fields) {
		keys[i] = fields[i:i+1] + w
	}
	return keys
}

// Matches says whether d matches every term of q, read in its text: phrases, exclusions,
// dates.
func (d SearchDoc) Matches(q searchq.Query) bool { return docMatches(d, q) }

// HitLines are d's lines that hold a word q highlights, as a Hit carries them.
func (d SearchDoc) HitLines(q searchq.Query) []string { return hitLines(d, q) }
