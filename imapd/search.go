package imapd

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // non-UTF-8 text is searched decoded
	"github.com/emersion/go-message/textproto"

	"crewmail/internal/mimetree"
	"crewmail/store"
)

// errStop ends a walk through the archive early.
var errStop = errors.New("stop")

// Search answers SEARCH and UID SEARCH (RFC 9051 §6.4.4). Criteria on flags, dates (the
// internal date, and the Date header the archive recorded), sizes and numbers need no message
// bytes; header and text criteria read the posts in batches, one message at a time.
func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, _ *imap.SearchOptions) (*imap.SearchData, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sel := s.sel
	if sel == nil {
		return nil, no("", "No mailbox selected")
	}
	sel.staticCriteria(criteria)
	var flags map[uint64]byte
	err := s.srv.st.View(func(tx store.Tx) error {
		m, err := s.current(tx)
		if err != nil {
			return err
		}
		flags, err = flagMap(tx, sel.list, m.ID)
		return err
	})
	if err != nil {
		return nil, err
	}

	data := &imap.SearchData{}
	var (
		seqs imap.SeqSet
		uids imap.UIDSet
	)
	j := 0 // walks sel.uids alongside the archive, which is in the same order
	last := uint64(sel.lastUID())
	consider := func(p store.Post, raw []byte) error {
		if p.Seq > last {
			return errStop // archived since the client last heard: not in its view yet
		}
		for j < len(sel.uids) && uint64(sel.uids[j]) < p.Seq {
			j++
		}
		if j == len(sel.uids) || uint64(sel.uids[j]) != p.Seq {
			return nil
		}
		c := candidate{seq: uint32(j) + 1, post: p, raw: raw, flags: flags[p.Seq]}
		if !c.matches(criteria) {
			return nil
		}
		num := c.seq
		if kind == imapserver.NumKindUID {
			num = uint32(p.Seq)
			uids.AddNum(imap.UID(p.Seq))
		} else {
			seqs.AddNum(c.seq)
		}
		if data.Min == 0 || num < data.Min {
			data.Min = num
		}
		data.Max = max(data.Max, num)
		data.Count++
		return nil
	}

	var cands []uint64
	narrowed := false
	if needsText(criteria) {
		if cands, narrowed, err = s.indexed(sel.list, criteria); err != nil {
			return nil, err
		}
	}
	if narrowed {
		// The index gave the posts that can hold the text; each is then searched as below,
		// in batches of short transactions.
		for len(cands) > 0 && err == nil {
			n := min(len(cands), batchMessages)
			err = s.srv.st.View(func(tx store.Tx) error {
				for _, seq := range cands[:n] {
					p, raw, err := tx.Post(sel.list, seq)
					if err != nil {
						return err
					}
					if err := consider(p, raw); err != nil {
						return err
					}
				}
				return nil
			})
			cands = cands[n:]
		}
	} else if !needsText(criteria) {
		err = s.srv.st.View(func(tx store.Tx) error {
			return tx.Posts(sel.list, func(p store.Post) error { return consider(p, nil) })
		})
	} else {
		// Batches, each in its own short transaction; the bytes are read in place.
		var after uint64
		for done := false; !done && err == nil; {
			err = s.srv.st.View(func(tx store.Tx) error {
				done = true
				n, size := 0, 0
				err := tx.PostsAfter(sel.list, after, func(p store.Post, raw []byte) error {
					after = p.Seq
					if err := consider(p, raw); err != nil {
						return err
					}
					n, size = n+1, size+len(raw)
					if n >= batchMessages || size >= batchBytes {
						done = false
						return errStop
					}
					return nil
				})
				if errors.Is(err, errStop) {
					return nil
				}
				return err
			})
			if after >= last {
				break
			}
		}
	}
	if errors.Is(err, errStop) {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	if kind == imapserver.NumKindUID {
		data.All = uids
	} else {
		data.All = seqs
	}
	return data, nil
}

// indexed asks the search index for the posts that can match c's TEXT and BODY criteria (those
// all of c needs, not under NOT or OR): ok false when it cannot tell for any of them, and the
// archive is read whole. The index finds a superset (store.Search.SearchSubstrings), so
// checking each of its posts as before gives the same answer as reading every post.
func (s *session) indexed(list string, c *imap.SearchCriteria) (seqs []uint64, ok bool, err error) {
	err = s.srv.st.View(func(tx store.Tx) error {
		for _, pattern := range slices.Concat(c.Text, c.Body) {
			found, can, err := tx.SearchSubstrings(list, pattern)
			if err != nil || !can {
				if err != nil {
					return err
				}
				continue
			}
			if ok {
				seqs = intersect(seqs, found)
			} else {
				seqs, ok = found, true
			}
		}
		return nil
	})
	return seqs, ok, err
}

// intersect is what two ascending lists have in common.
func intersect(a, b []uint64) []uint64 {
	var out []uint64
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case b[j] < a[i]:
			j++
		default:
			out = append(out, a[i])
			i, j = i+1, j+1
		}
	}
	return out
}

// staticCriteria replaces "*" in the criteria's sets by numbers.
func (sel *selected) staticCriteria(c *imap.SearchCriteria) {
	for i, set := range c.SeqNum {
		out := make(imap.SeqSet, len(set))
		for k, r := range set {
			out[k].Start, out[k].Stop = static(r.Start, r.Stop, uint32(len(sel.uids)))
		}
		c.SeqNum[i] = out
	}
	for i, set := range c.UID {
		if imap.IsSearchRes(set) {
			c.UID[i] = imap.UIDSet{} // SEARCHRES is not offered: "$" matches nothing
			continue
		}
		out := make(imap.UIDSet, len(set))
		for k, r := range set {
			start, stop := static(uint32(r.Start), uint32(r.Stop), uint32(sel.lastUID()))
			out[k].Start, out[k].Stop = imap.UID(start), imap.UID(stop)
		}
		c.UID[i] = out
	}
	for i := range c.Not {
		sel.staticCriteria(&c.Not[i])
	}
	for i := range c.Or {
		sel.staticCriteria(&c.Or[i][0])
		sel.staticCriteria(&c.Or[i][1])
	}
}

// needsText says whether c looks into a message's header or body.
func needsText(c *imap.SearchCriteria) bool {
	if len(c.Header) > 0 || len(c.Body) > 0 || len(c.Text) > 0 {
		return true
	}
	for i := range c.Not {
		if needsText(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if needsText(&c.Or[i][0]) || needsText(&c.Or[i][1]) {
			return true
		}
	}
	return false
}

// candidate is a message being searched.
type candidate struct {
	seq   uint32
	post  store.Post
	raw   []byte // nil when the criteria need no text
	flags byte
}

func (c *candidate) hasFlag(f imap.Flag) bool {
	b := flagBit(f)
	return b != 0 && c.flags&b != 0 // no post has \Answered, \Deleted, \Draft, \Recent or keywords
}

func (c *candidate) matches(cr *imap.SearchCriteria) bool {
	for _, set := range cr.SeqNum {
		if !set.Contains(c.seq) {
			return false
		}
	}
	for _, set := range cr.UID {
		if !set.Contains(imap.UID(c.post.Seq)) {
			return false
		}
	}
	if !matchDate(internalDate(c.post), cr.Since, cr.Before) {
		return false
	}
	if !cr.SentSince.IsZero() || !cr.SentBefore.IsZero() {
		if c.post.Date.IsZero() || !matchDate(c.post.Date, cr.SentSince, cr.SentBefore) {
			return false
		}
	}
	for _, f := range cr.Flag {
		if !c.hasFlag(f) {
			return false
		}
	}
	for _, f := range cr.NotFlag {
		if c.hasFlag(f) {
			return false
		}
	}
	if cr.Larger != 0 && int64(c.post.Size) <= cr.Larger {
		return false
	}
	if cr.Smaller != 0 && int64(c.post.Size) >= cr.Smaller {
		return false
	}
	if len(cr.Header) > 0 {
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(c.raw)))
		if err != nil {
			return false
		}
		hh := gomessage.Header{Header: h}
		for _, f := range cr.Header {
			if !matchFields(hh.FieldsByKey(f.Key), f.Value) {
				return false
			}
		}
	}
	for _, t := range cr.Text {
		if !matchText(c.raw, t, true) {
			return false
		}
	}
	for _, t := range cr.Body {
		if !matchText(c.raw, t, false) {
			return false
		}
	}
	for i := range cr.Not {
		if c.matches(&cr.Not[i]) {
			return false
		}
	}
	for i := range cr.Or {
		if !c.matches(&cr.Or[i][0]) && !c.matches(&cr.Or[i][1]) {
			return false
		}
	}
	return true
}

// matchDate compares dates only, ignoring time and zone (RFC 9051 §6.4.4).
func matchDate(t, since, before time.Time) bool {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if !since.IsZero() && d.Before(since) {
		return false
	}
	if !before.IsZero() && !d.Before(before) {
		return false
	}
	return true
}

// matchFields: one of the fields contains pattern, case-insensitively; an empty pattern
// matches any message that has the field.
func matchFields(fields gomessage.HeaderFields, pattern string) bool {
	if pattern == "" {
		return fields.Len() > 0
	}
	pattern = strings.ToLower(pattern)
	for fields.Next() {
		v, _ := fields.Text()
		if strings.Contains(strings.ToLower(v), pattern) {
			return true
		}
	}
	return false
}

// errFound ends a walk through a message's parts once the text searched for is found.
var errFound = errors.New("found")

// matchText looks for pattern in raw's text parts, decoded, and in the headers of the messages
// it carries; for TEXT (withHeader) also in its own header and the MIME headers of its parts.
// The parts are those BODYSTRUCTURE shows: a flat part beyond mimetree's limits is not text, and
// is not looked into.
func matchText(raw []byte, pattern string, withHeader bool) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	lower := []byte(strings.ToLower(pattern))
	w := mimetree.Walker{Limits: mimetree.Default, Leaf: func(p *mimetree.Part, body io.Reader) error {
		if pattern == "" {
			return errFound
		}
		if !strings.HasPrefix(p.Type, "text/") && !strings.HasPrefix(p.Type, "message/") {
			return nil
		}
		e, _ := gomessage.New(p.Header, body) // an unknown charset reads as sent
		if e == nil {
			return nil
		}
		b, err := io.ReadAll(e.Body)
		if err != nil && len(b) == 0 {
			return nil
		}
		if bytes.Contains(bytes.ToLower(b), lower) {
			return errFound
		}
		return nil
	}}
	root, err := w.Walk(raw)
	if errors.Is(err, errFound) {
		return true
	}
	if root == nil {
		return false // not even a header
	}
	if pattern == "" {
		return true
	}
	var inHeaders func(p *mimetree.Part) bool
	inHeaders = func(p *mimetree.Part) bool {
		carried := p.Parent != nil && p.Parent.Message()
		if (withHeader || carried) && matchFields(p.Header.Fields(), pattern) {
			return true
		}
		for _, c := range p.Children {
			if inHeaders(c) {
				return true
			}
		}
		return false
	}
	return inHeaders(root)
}
