package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"crewmail/internal/searchq"
)

// The search index of a list, in three sub-buckets of the list's bucket (schema 8):
//
//	search-docs     sequence → the SearchDoc (docHead, then JSON of its texts)
//	search-terms    field byte + word + 0x00 + big-endian first sequence → posting block:
//	                the sequences of the posts with that word in that field, ascending, as
//	                uvarint deltas from the block's first (searchq words hold no 0x00)
//	search-pending  sequence → nothing: posts whose words are not in search-terms yet
//
// A post's words go to search-pending first and into the posting blocks by the
// pendingMerge: one write transaction then touches each block once for many posts, instead of
// a few hundred pages for every post (bbolt writes every page a transaction changes). Searches
// read the pending posts' documents directly. The list's key search-count is how many posts
// are indexed; the index is complete when that is the archive's last sequence.
var (
	subSearchDocs    = []byte("search-docs")
	subSearchTerms   = []byte("search-terms")
	subSearchPending = []byte("search-pending")
	keySearchCount   = []byte("search-count")
)

// Fields of the posting lists.
const (
	fieldOwn        = 'o'
	fieldQuoted     = 'q'
	fieldSubject    = 's'
	fieldFrom       = 'f'
	fieldOther      = 'x'
	fieldAttachment = 'a'
)

const (
	// pendingMerge is how many posts wait in search-pending before their words are merged.
	pendingMerge = 256
	// maxBlock is the size a posting block is split beyond.
	maxBlock = 512
	// docHead is the fixed start of a stored document: thread, date (Unix seconds), flags.
	docHead = 17
)

// docText is the stored part of a SearchDoc after docHead.
type docText struct {
	FromAddr string `json:"fa,omitempty"`
	FromName string `json:"fn,omitempty"`
	Subject  string `json:"s,omitempty"`
	Own      string `json:"o,omitempty"`
	Quoted   string `json:"q,omitempty"`
	Other    string `json:"x,omitempty"`
}

func encodeDoc(d SearchDoc) ([]byte, error) {
	text, err := json.Marshal(docText{d.FromAddr, d.FromName, d.Subject, d.Own, d.Quoted, d.Other})
	if err != nil {
		return nil, err
	}
	v := make([]byte, docHead, docHead+len(text))
	binary.BigEndian.PutUint64(v, d.Thread)
	if !d.Date.IsZero() {
		binary.BigEndian.PutUint64(v[8:], uint64(d.Date.Unix()))
	}
	if d.Attachment {
		v[16] = 1
	}
	return append(v, text...), nil
}

func decodeDoc(v []byte) (SearchDoc, error) {
	var d SearchDoc
	if len(v) < docHead {
		return d, fmt.Errorf("damaged search document")
	}
	d.Thread = binary.BigEndian.Uint64(v)
	if s := int64(binary.BigEndian.Uint64(v[8:])); s != 0 {
		d.Date = time.Unix(s, 0).UTC()
	}
	d.Attachment = v[16] == 1
	var t docText
	if err := json.Unmarshal(v[docHead:], &t); err != nil {
		return d, fmt.Errorf("damaged search document: %w", err)
	}
	d.FromAddr, d.FromName, d.Subject, d.Own, d.Quoted, d.Other = t.FromAddr, t.FromName, t.Subject, t.Own, t.Quoted, t.Other
	return d, nil
}

// docTerms returns the posting keys' prefixes (field + word + 0x00) of d, each once.
func docTerms(d SearchDoc) []string {
	seen := map[string]bool{}
	var out []string
	add := func(field byte, s string) {
		searchq.Words(s, func(w string) {
			k := string(field) + w + "\x00"
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		})
	}
	add(fieldOwn, d.Own)
	add(fieldQuoted, d.Quoted)
	add(fieldSubject, d.Subject)
	add(fieldFrom, d.FromName+" "+d.FromAddr)
	add(fieldOther, d.Other)
	if d.Attachment {
		out = append(out, string(rune(fieldAttachment))+"\x00")
	}
	return out
}

// searchBuckets are a list's index buckets.
type searchBuckets struct {
	list, docs, terms, pending *bolt.Bucket
}

func (t *boltTx) searchBuckets(list string) (searchBuckets, error) {
	b := t.listBucket(list)
	if b == nil {
		return searchBuckets{}, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	s := searchBuckets{b, b.Bucket(subSearchDocs), b.Bucket(subSearchTerms), b.Bucket(subSearchPending)}
	if s.docs == nil || s.terms == nil || s.pending == nil {
		return s, fmt.Errorf("list %s has no search index", list)
	}
	return s, nil
}

func (s searchBuckets) count() uint64 {
	if v := s.list.Get(keySearchCount); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (s searchBuckets) setCount(n uint64) error { return s.list.Put(keySearchCount, u64(n)) }

// IndexPost adds archived post seq of list to the search index (replacing what was indexed for
// it before).
func (t *boltTx) IndexPost(list string, seq uint64, d SearchDoc) error {
	s, err := t.searchBuckets(list)
	if err != nil {
		return err
	}
	if s.docs.Get(u64(seq)) != nil {
		if err := t.UnindexPost(list, seq); err != nil {
			return err
		}
	}
	v, err := encodeDoc(d)
	if err != nil {
		return err
	}
	s.docs.FillPercent = 0.95
	if err := s.docs.Put(u64(seq), v); err != nil {
		return err
	}
	if err := s.pending.Put(u64(seq), nil); err != nil {
		return err
	}
	if err := s.setCount(s.count() + 1); err != nil {
		return err
	}
	if s.pending.Stats().KeyN >= pendingMerge {
		return s.merge()
	}
	return nil
}

// merge moves the pending posts' words into the posting blocks, each block written once.
func (s searchBuckets) merge() error {
	adds := map[string][]uint64{}
	var done [][]byte
	if err := s.pending.ForEach(func(k, _ []byte) error {
		seq := binary.BigEndian.Uint64(k)
		d, err := decodeDoc(s.docs.Get(k))
		if err != nil {
			return fmt.Errorf("post %d: %w", seq, err)
		}
		for _, term := range docTerms(d) {
			adds[term] = append(adds[term], seq)
		}
		done = append(done, slices.Clone(k))
		return nil
	}); err != nil {
		return err
	}
	terms := make([]string, 0, len(adds))
	for term := range adds {
		terms = append(terms, term)
	}
	slices.Sort(terms)
	for _, term := range terms {
		if err := addPostings(s.terms, term, adds[term]); err != nil {
			return err
		}
	}
	for _, k := range done {
		if err := s.pending.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// blockFor finds the block of prefix that seq belongs in: the last whose first sequence is at
// most seq, else the first. k is nil when prefix has no block.
func blockFor(c *bolt.Cursor, prefix string, seq uint64) (k, v []byte) {
	p := []byte(prefix)
	if k, _ = c.Seek(append(slices.Clip(p), u64(seq+1)...)); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k != nil && bytes.HasPrefix(k, p) && len(k) == len(p)+8 {
		return k, v
	}
	k, v = c.Seek(p)
	if k != nil && bytes.HasPrefix(k, p) && len(k) == len(p)+8 {
		return k, v
	}
	return nil, nil
}

func decodeBlock(k, v []byte) ([]uint64, error) {
	seq := binary.BigEndian.Uint64(k[len(k)-8:])
	var out []uint64
	for len(v) > 0 {
		d, n := binary.Uvarint(v)
		if n <= 0 {
			return nil, fmt.Errorf("damaged posting block %q", k)
		}
		seq += d
		out = append(out, seq)
		v = v[n:]
	}
	return out, nil
}

func encodeBlock(seqs []uint64) []byte {
	var out []byte
	prev := seqs[0]
	for _, s := range seqs {
		out = binary.AppendUvarint(out, s-prev)
		prev = s
	}
	return out
}

// putBlocks writes seqs (ascending) as blocks of prefix, maxBlock bytes at most each.
func putBlocks(terms *bolt.Bucket, prefix string, seqs []uint64) error {
	for len(seqs) > 0 {
		n, size := 0, 0
		for n < len(seqs) && size < maxBlock {
			d := uint64(0)
			if n > 0 {
				d = seqs[n] - seqs[n-1]
			}
			size += uvarintLen(d)
			n++
		}
		if err := terms.Put(append([]byte(prefix), u64(seqs[0])...), encodeBlock(seqs[:n])); err != nil {
			return err
		}
		seqs = seqs[n:]
	}
	return nil
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// addPostings adds seqs (ascending) to the postings of prefix.
func addPostings(terms *bolt.Bucket, prefix string, seqs []uint64) error {
	terms.FillPercent = 0.9
	c := terms.Cursor()
	k, v := blockFor(c, prefix, seqs[0])
	if k == nil {
		return putBlocks(terms, prefix, seqs)
	}
	have, err := decodeBlock(k, v)
	if err != nil {
		return err
	}
	// The common case: the posts are newer than everything indexed, and go at the end.
	if next, _ := c.Next(); next != nil && bytes.HasPrefix(next, []byte(prefix)) && len(next) == len(prefix)+8 {
		// Not the last block: merge into a copy of everything of prefix (rare: a reindex
		// of older posts, or a post indexed again).
		var all []uint64
		for k, v := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)) && len(k) == len(prefix)+8; k, v = c.Next() {
			b, err := decodeBlock(k, v)
			if err != nil {
				return err
			}
			all = append(all, b...)
		}
		if err := deletePrefix(terms, prefix); err != nil {
			return err
		}
		return putBlocks(terms, prefix, mergeSorted(all, seqs))
	}
	if err := terms.Delete(k); err != nil {
		return err
	}
	return putBlocks(terms, prefix, mergeSorted(have, seqs))
}

func deletePrefix(terms *bolt.Bucket, prefix string) error {
	var keys [][]byte
	c := terms.Cursor()
	for k, _ := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)) && len(k) == len(prefix)+8; k, _ = c.Next() {
		keys = append(keys, slices.Clone(k))
	}
	for _, k := range keys {
		if err := terms.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// mergeSorted merges two ascending lists, each value once.
func mergeSorted(a, b []uint64) []uint64 {
	out := make([]uint64, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var v uint64
		switch {
		case j == len(b) || i < len(a) && a[i] < b[j]:
			v, i = a[i], i+1
		case i == len(a) || b[j] < a[i]:
			v, j = b[j], j+1
		default:
			v, i, j = a[i], i+1, j+1
		}
		if len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return out
}

// UnindexPost takes post seq of list out of the search index; a post not indexed is no error.
func (t *boltTx) UnindexPost(list string, seq uint64) error {
	s, err := t.searchBuckets(list)
	if err != nil {
		return err
	}
	v := s.docs.Get(u64(seq))
	if v == nil {
		return nil
	}
	d, err := decodeDoc(v)
	if err != nil {
		return fmt.Errorf("post %d of %s: %w", seq, list, err)
	}
	if s.pending.Get(u64(seq)) != nil {
		if err := s.pending.Delete(u64(seq)); err != nil {
			return err
		}
	} else {
		c := s.terms.Cursor()
		for _, term := range docTerms(d) {
			k, v := blockFor(c, term, seq)
			if k == nil {
				continue
			}
			seqs, err := decodeBlock(k, v)
			if err != nil {
				return err
			}
			i, found := slices.BinarySearch(seqs, seq)
			if !found {
				continue
			}
			seqs = slices.Delete(seqs, i, i+1)
			key := slices.Clone(k)
			if err := s.terms.Delete(key); err != nil {
				return err
			}
			if len(seqs) > 0 {
				if err := s.terms.Put(append([]byte(term), u64(seqs[0])...), encodeBlock(seqs)); err != nil {
					return err
				}
			}
			c = s.terms.Cursor() // the bucket changed under the cursor
		}
	}
	if err := s.docs.Delete(u64(seq)); err != nil {
		return err
	}
	if n := s.count(); n > 0 {
		return s.setCount(n - 1)
	}
	return nil
}

// SearchIndexed says whether every archived post of list is in its search index.
func (t *boltTx) SearchIndexed(list string) (bool, error) {
	s, err := t.searchBuckets(list)
	if err != nil {
		return false, err
	}
	return s.count() == s.list.Bucket(subArchive).Sequence(), nil
}

// ClearSearch empties list's search index.
func (t *boltTx) ClearSearch(list string) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	for _, name := range [][]byte{subSearchDocs, subSearchTerms, subSearchPending} {
		if b.Bucket(name) != nil {
			if err := b.DeleteBucket(name); err != nil {
				return err
			}
		}
		if _, err := b.CreateBucket(name); err != nil {
			return err
		}
	}
	return b.Put(keySearchCount, u64(0))
}

// postings returns the sequences of the posts with word w in any of fields, ascending.
func (s searchBuckets) postings(fields string, w string) ([]uint64, error) {
	var out []uint64
	c := s.terms.Cursor()
	for _, f := range []byte(fields) {
		prefix := []byte(string(rune(f)) + w + "\x00")
		var seqs []uint64
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, v = c.Next() {
			b, err := decodeBlock(k, v)
			if err != nil {
				return nil, err
			}
			seqs = append(seqs, b...)
		}
		out = mergeSorted(out, seqs)
	}
	return out, nil
}

func intersect(a, b []uint64) []uint64 {
	var out []uint64
	i, j := 0, 0
	for i < len(a) && j < len(b) {
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

// termFields are the posting fields a term is looked up in.
func termFields(t searchq.Term, quotes bool) string {
	switch t.Field {
	case searchq.From:
		return string(rune(fieldFrom))
	case searchq.Subject:
		return string(rune(fieldSubject))
	case searchq.Attachment:
		return string(rune(fieldAttachment))
	}
	if quotes {
		return string([]byte{fieldOwn, fieldSubject, fieldQuoted})
	}
	return string([]byte{fieldOwn, fieldSubject})
}

// SearchPosts calls fn for the posts of list that match q, newest first; limit (0: no limit)
// bounds how many conversations they come from (see Search).
func (t *boltTx) SearchPosts(list string, q searchq.Query, limit int, fn func(Hit) error) error {
	s, err := t.searchBuckets(list)
	if err != nil {
		return err
	}
	// Candidates: the posts the index says have every word of every term looked for, and
	// the posts not merged into the index yet. Every candidate is then checked against its
	// document, which also tells phrases, dates and exclusions.
	var cand []uint64
	narrowed := false
	for _, term := range q.Terms {
		if term.Not || term.Field == searchq.Before || term.Field == searchq.After {
			continue
		}
		words := term.Words
		if term.Field == searchq.Attachment {
			words = []string{""}
		}
		for _, w := range words {
			seqs, err := s.postings(termFields(term, q.Quotes), w)
			if err != nil {
				return fmt.Errorf("search %s: %w", list, err)
			}
			if narrowed {
				cand = intersect(cand, seqs)
			} else {
				cand, narrowed = seqs, true
			}
		}
	}
	var pending []uint64
	if err := s.pending.ForEach(func(k, _ []byte) error {
		pending = append(pending, binary.BigEndian.Uint64(k))
		return nil
	}); err != nil {
		return err
	}
	merged := s.list.Bucket(subMerged)
	threads := map[uint64]bool{}
	visit := func(seq uint64) error {
		v := s.docs.Get(u64(seq))
		if len(v) < docHead {
			return nil
		}
		th := thread(merged, binary.BigEndian.Uint64(v))
		if limit > 0 && len(threads) >= limit && !threads[th] {
			return nil
		}
		d, err := decodeDoc(v)
		if err != nil {
			return fmt.Errorf("post %d of %s: %w", seq, list, err)
		}
		if !docMatches(d, q) {
			return nil
		}
		threads[th] = true
		return fn(Hit{Seq: seq, Thread: th, Date: d.Date, Lines: hitLines(d, q)})
	}
	if !narrowed {
		// Nothing to look up: every post is a candidate, newest first.
		c := s.docs.Cursor()
		for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
			if err := visit(binary.BigEndian.Uint64(k)); err != nil {
				return err
			}
		}
		return nil
	}
	cand = mergeSorted(cand, pending)
	for i := len(cand) - 1; i >= 0; i-- {
		if err := visit(cand[i]); err != nil {
			return err
		}
	}
	return nil
}

// docMatches says whether d matches every term of q.
func docMatches(d SearchDoc, q searchq.Query) bool {
	var folded map[searchq.Field][]string
	texts := func(f searchq.Field) []string {
		if folded == nil {
			folded = map[searchq.Field][]string{
				searchq.Subject: {searchq.Fold(d.Subject)},
				searchq.From:    {searchq.Fold(d.FromName + " " + d.FromAddr)},
			}
			t := []string{folded[searchq.Subject][0], searchq.Fold(d.Own)}
			if q.Quotes {
				t = append(t, searchq.Fold(d.Quoted))
			}
			folded[searchq.Text] = t
		}
		return folded[f]
	}
	for _, term := range q.Terms {
		var ok bool
		switch term.Field {
		case searchq.Attachment:
			ok = d.Attachment
		case searchq.Before:
			ok = !d.Date.IsZero() && d.Date.Before(term.Date)
		case searchq.After:
			ok = !d.Date.IsZero() && !d.Date.Before(term.Date)
		default:
			phrase := " " + strings.Join(term.Words, " ") + " "
			for _, text := range texts(term.Field) {
				if strings.Contains(" "+text+" ", phrase) {
					ok = true
					break
				}
			}
		}
		if ok == term.Not {
			return false
		}
	}
	return true
}

// hitLines are the lines of d that hold a word q highlights.
func hitLines(d SearchDoc, q searchq.Query) []string {
	want := map[string]bool{}
	for _, w := range q.Highlights() {
		want[w] = true
	}
	var out []string
	consider := func(text string) {
		for line := range strings.Lines(text) {
			if len(out) == MaxHitLines {
				return
			}
			hit := false
			searchq.Words(line, func(w string) { hit = hit || want[w] })
			if hit {
				out = append(out, cutLine(strings.TrimSpace(line)))
			}
		}
	}
	consider(d.Subject)
	consider(d.Own)
	if q.Quotes {
		consider(d.Quoted)
	}
	return out
}

func cutLine(s string) string {
	if utf8.RuneCountInString(s) <= MaxHitLine {
		return s
	}
	r := []rune(s)
	return string(r[:MaxHitLine-1]) + "…"
}

// SearchSubstrings returns the posts of list whose indexed words (every field, Other
// included) contain each word of text, ascending: a superset of the posts whose text holds
// text, case aside, as IMAP's SEARCH TEXT and BODY look for it (see searchq.Words). ok is
// false when the index cannot tell: it is not complete, text has no word, or a word longer
// than searchq.MaxWord/2.
func (t *boltTx) SearchSubstrings(list, text string) (seqs []uint64, ok bool, err error) {
	s, err := t.searchBuckets(list)
	if err != nil {
		return nil, false, err
	}
	if s.count() != s.list.Bucket(subArchive).Sequence() {
		return nil, false, nil
	}
	words := searchq.WordList(text)
	if len(words) == 0 {
		return nil, false, nil
	}
	for _, w := range words {
		if utf8.RuneCountInString(w) > searchq.MaxWord/2 {
			return nil, false, nil
		}
	}
	words = slices.Compact(slices.Sorted(slices.Values(words)))
	sets := make([][]uint64, len(words))
	// One pass over every word of the index: a word that contains a word of text brings its
	// posts.
	var last []byte
	var lastField byte
	match := make([]bool, len(words))
	c := s.terms.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) < 10 {
			continue
		}
		term := k[1 : len(k)-9]
		if !bytes.Equal(term, last) || k[0] != lastField {
			last = append(last[:0], term...)
			lastField = k[0]
			for i, w := range words {
				match[i] = bytes.Contains(term, []byte(w))
			}
		}
		var block []uint64
		for i := range words {
			if !match[i] {
				continue
			}
			if block == nil {
				if block, err = decodeBlock(k, v); err != nil {
					return nil, false, err
				}
			}
			sets[i] = append(sets[i], block...)
		}
	}
	// The posts not merged yet: their documents' words.
	if err := s.pending.ForEach(func(k, _ []byte) error {
		seq := binary.BigEndian.Uint64(k)
		d, err := decodeDoc(s.docs.Get(k))
		if err != nil {
			return fmt.Errorf("post %d of %s: %w", seq, list, err)
		}
		has := make([]bool, len(words))
		for _, term := range docTerms(d) {
			for i, w := range words {
				has[i] = has[i] || strings.Contains(term[1:], w)
			}
		}
		for i := range words {
			if has[i] {
				sets[i] = append(sets[i], seq)
			}
		}
		return nil
	}); err != nil {
		return nil, false, err
	}
	for i := range sets {
		slices.Sort(sets[i])
		sets[i] = slices.Compact(sets[i])
	}
	seqs = sets[0]
	for _, set := range sets[1:] {
		seqs = intersect(seqs, set)
	}
	return seqs, true, nil
}
