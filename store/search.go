package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"crewmail/internal/searchq"
)

// The search index of a list, in sub-buckets of the list's bucket (schema 8):
//
//	search-docs      sequence → the SearchDoc (docHead, then its texts; see encodeDoc)
//	search-pending   sequence → nothing: the posts whose words are in no segment yet
//	search-terms     segment + field byte + word + 0x00 → the sequences of the segment's posts
//	                 with that word in that field, ascending, as uvarint deltas (searchq words
//	                 hold no 0x00)
//	search-segments  segment → the lowest and highest sequence it holds, then the sequence,
//	                 thread and date of each of its posts (8 bytes each), ascending: what a
//	                 search needs of a candidate before it shows it, without reading its
//	                 document
//
// A post's document is written when it is archived, and its words wait in search-pending
// until pendingMerge posts do; then the transaction that archives the last of them writes
// their words as one segment, whose keys follow every key written before (the segment number
// grows), so bbolt appends pages instead of rewriting pages all over the index for every post.
// Searches look a word up in every segment and read the pending posts' documents. The Other
// words (for IMAP only) are kept in the document and read there by SearchSubstrings: they are
// mostly words no one searches for (Message-IDs, hashes, boundaries) that would make every
// segment large. The list's key search-count is how many posts are indexed; the index is complete
// when that is the archive's last sequence.
var (
	subSearchDocs     = []byte("search-docs")
	subSearchTerms    = []byte("search-terms")
	subSearchPending  = []byte("search-pending")
	subSearchSegments = []byte("search-segments")
	keySearchCount    = []byte("search-count")
	keySearchPending  = []byte("search-pending-n") // how many posts search-pending holds

	searchSubs = [][]byte{subSearchDocs, subSearchTerms, subSearchPending, subSearchSegments}
)

// Fields of the posting lists.
const (
	fieldOwn        = 'o'
	fieldQuoted     = 'q'
	fieldSubject    = 's'
	fieldFrom       = 'f'
	fieldAttachment = 'a'
)

const (
	// pendingMerge is how many posts wait in search-pending before their words make a
	// segment.
	pendingMerge = 512
	// docHead is the fixed start of a stored document: thread, date (Unix seconds), flags.
	docHead = 17
)

// A stored document is docHead, then its texts, each a uvarint length and the bytes: from
// address, from name, subject, own text, quoted text, other words (last, so that
// SearchSubstrings reads them without the rest: docOther).
func encodeDoc(d SearchDoc) ([]byte, error) {
	texts := []string{d.FromAddr, d.FromName, d.Subject, d.Own, d.Quoted, d.Other}
	n := docHead
	for _, t := range texts {
		n += binary.MaxVarintLen64 + len(t)
	}
	v := make([]byte, docHead, n)
	binary.BigEndian.PutUint64(v, d.Thread)
	if !d.Date.IsZero() {
		binary.BigEndian.PutUint64(v[8:], uint64(d.Date.Unix()))
	}
	if d.Attachment {
		v[16] = 1
	}
	for _, t := range texts {
		v = binary.AppendUvarint(v, uint64(len(t)))
		v = append(v, t...)
	}
	return v, nil
}

// docDate is the date in a stored document's head.
func docDate(v []byte) time.Time {
	if s := int64(binary.BigEndian.Uint64(v[8:])); s != 0 {
		return time.Unix(s, 0).UTC()
	}
	return time.Time{}
}

// docOther are the Other words of a stored document, nil when it is damaged.
func docOther(v []byte) []byte {
	if len(v) < docHead {
		return nil
	}
	rest := v[docHead:]
	for i := 0; i < 6; i++ {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return nil
		}
		if i == 5 {
			return rest[k : k+int(n)]
		}
		rest = rest[k+int(n):]
	}
	return nil
}

func decodeDoc(v []byte) (SearchDoc, error) {
	var d SearchDoc
	if len(v) < docHead {
		return d, fmt.Errorf("damaged search document")
	}
	d.Thread = binary.BigEndian.Uint64(v)
	d.Date = docDate(v)
	d.Attachment = v[16] == 1
	rest := v[docHead:]
	for _, t := range []*string{&d.FromAddr, &d.FromName, &d.Subject, &d.Own, &d.Quoted, &d.Other} {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return d, fmt.Errorf("damaged search document")
		}
		*t = string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
	}
	return d, nil
}

// docTerms returns the posting keys of d in a segment (field + word + 0x00), each once.
func docTerms(d SearchDoc) []string {
	var out []string
	seen := map[string]bool{}
	var key []byte
	add := func(field byte, s string) {
		searchq.WordBytes(s, func(w []byte) {
			key = append(append(append(key[:0], field), w...), 0)
			if !seen[string(key)] {
				k := string(key)
				seen[k] = true
				out = append(out, k)
			}
		})
	}
	add(fieldOwn, d.Own)
	add(fieldQuoted, d.Quoted)
	add(fieldSubject, d.Subject)
	add(fieldFrom, d.FromName+" "+d.FromAddr)
	if d.Attachment {
		out = append(out, string(rune(fieldAttachment))+"\x00")
	}
	return out
}

// searchBuckets are a list's index buckets.
type searchBuckets struct {
	list, docs, terms, pending, segs *bolt.Bucket
}

func (t *boltTx) searchBuckets(list string) (searchBuckets, error) {
	b := t.listBucket(list)
	if b == nil {
		return searchBuckets{}, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	s := searchBuckets{b, b.Bucket(subSearchDocs), b.Bucket(subSearchTerms), b.Bucket(subSearchPending), b.Bucket(subSearchSegments)}
	if s.docs == nil || s.terms == nil || s.pending == nil || s.segs == nil {
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
	n := uint64(1)
	if v := s.list.Get(keySearchPending); len(v) == 8 {
		n += binary.BigEndian.Uint64(v)
	}
	if n >= pendingMerge {
		return s.merge()
	}
	return s.list.Put(keySearchPending, u64(n))
}

// merge writes the pending posts' words as a new segment.
func (s searchBuckets) merge() error {
	adds := map[string][]uint64{}
	var done [][]byte
	lo, hi := uint64(math.MaxUint64), uint64(0)
	var heads []byte // sequence, thread, date of each post, ascending (pending is in order)
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
		lo, hi = min(lo, seq), max(hi, seq)
		if d := s.docs.Get(k); len(d) >= docHead {
			heads = append(heads, slices.Concat(k, d[:16])...)
		}
		return nil
	}); err != nil {
		return err
	}
	if len(done) == 0 {
		return nil
	}
	seg, err := s.segs.NextSequence()
	if err != nil {
		return err
	}
	terms := make([]string, 0, len(adds))
	for term := range adds {
		terms = append(terms, term)
	}
	slices.Sort(terms)
	s.terms.FillPercent = 1 // keys only ever go at the end
	for _, term := range terms {
		if err := s.terms.Put(slices.Concat(u64(seg), []byte(term)), encodePostings(adds[term])); err != nil {
			return err
		}
	}
	if err := s.segs.Put(u64(seg), slices.Concat(u64(lo), u64(hi), heads)); err != nil {
		return err
	}
	for _, k := range done {
		if err := s.pending.Delete(k); err != nil {
			return err
		}
	}
	return s.list.Put(keySearchPending, u64(0))
}

func decodePostings(k, v []byte) ([]uint64, error) {
	var out []uint64
	seq := uint64(0)
	for len(v) > 0 {
		d, n := binary.Uvarint(v)
		if n <= 0 {
			return nil, fmt.Errorf("damaged postings %q", k)
		}
		seq += d
		out = append(out, seq)
		v = v[n:]
	}
	return out, nil
}

func encodePostings(seqs []uint64) []byte {
	var out []byte
	prev := uint64(0)
	for _, s := range seqs {
		out = binary.AppendUvarint(out, s-prev)
		prev = s
	}
	return out
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
		if v := s.list.Get(keySearchPending); len(v) == 8 && binary.BigEndian.Uint64(v) > 0 {
			if err := s.list.Put(keySearchPending, u64(binary.BigEndian.Uint64(v)-1)); err != nil {
				return err
			}
		}
	} else if err := s.unsegment(seq, docTerms(d)); err != nil {
		return err
	}
	if err := s.docs.Delete(u64(seq)); err != nil {
		return err
	}
	if n := s.count(); n > 0 {
		return s.setCount(n - 1)
	}
	return nil
}

// unsegment takes seq out of the postings of terms in the segments whose range holds it.
func (s searchBuckets) unsegment(seq uint64, terms []string) error {
	var segs [][]byte
	if err := s.segs.ForEach(func(k, v []byte) error {
		if len(v) == 16 && binary.BigEndian.Uint64(v) <= seq && seq <= binary.BigEndian.Uint64(v[8:]) {
			segs = append(segs, slices.Clone(k))
		}
		return nil
	}); err != nil {
		return err
	}
	for _, seg := range segs {
		// The post's head goes too, so that no search takes it from here.
		if v := s.segs.Get(seg); len(v) >= 16 && (len(v)-16)%24 == 0 {
			for j := 16; j < len(v); j += 24 {
				if binary.BigEndian.Uint64(v[j:]) == seq {
					if err := s.segs.Put(seg, slices.Concat(v[:j], v[j+24:])); err != nil {
						return err
					}
					break
				}
			}
		}
		for _, term := range terms {
			key := slices.Concat(seg, []byte(term))
			v := s.terms.Get(key)
			if v == nil {
				continue
			}
			seqs, err := decodePostings(key, v)
			if err != nil {
				return err
			}
			i, found := slices.BinarySearch(seqs, seq)
			if !found {
				continue
			}
			if seqs = slices.Delete(seqs, i, i+1); len(seqs) == 0 {
				err = s.terms.Delete(key)
			} else {
				err = s.terms.Put(key, encodePostings(seqs))
			}
			if err != nil {
				return err
			}
		}
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
	for _, name := range searchSubs {
		if b.Bucket(name) != nil {
			if err := b.DeleteBucket(name); err != nil {
				return err
			}
		}
		if _, err := b.CreateBucket(name); err != nil {
			return err
		}
	}
	if err := b.Put(keySearchPending, u64(0)); err != nil {
		return err
	}
	return b.Put(keySearchCount, u64(0))
}

// postings returns the sequences of the posts with word w in any of fields, in every segment,
// ascending.
func (s searchBuckets) postings(fields string, w string) ([]uint64, error) {
	var out []uint64
	sorted := true
	c := s.segs.Cursor()
	for seg, _ := c.First(); seg != nil; seg, _ = c.Next() {
		for _, f := range []byte(fields) {
			key := slices.Concat(seg, []byte{f}, []byte(w), []byte{0})
			v := s.terms.Get(key)
			if v == nil {
				continue
			}
			seqs, err := decodePostings(key, v)
			if err != nil {
				return nil, err
			}
			if len(out) > 0 && len(seqs) > 0 && seqs[0] <= out[len(out)-1] {
				sorted = false
			}
			out = append(out, seqs...)
		}
	}
	if !sorted { // several fields, or segments made out of order (a post indexed again)
		slices.Sort(out)
		out = slices.Compact(out)
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
//
// The candidates are the posts the segments list under every word of every term looked for,
// and the pending posts. A candidate is checked against its document only where the index
// cannot tell alone: a pending post, a phrase; a date is in the document's head, and the
// posts under an excluded word are left out as they are met.
func (t *boltTx) SearchPosts(list string, q searchq.Query, limit int, fn func(Hit) error) error {
	s, err := t.searchBuckets(list)
	if err != nil {
		return err
	}
	var cand, excluded []uint64
	narrowed, check := false, false
	for _, term := range q.Terms {
		if term.Field == searchq.Before || term.Field == searchq.After {
			continue
		}
		if term.Phrase() {
			check = true
		}
		words := term.Words
		if term.Field == searchq.Attachment {
			words = []string{""}
		}
		if term.Not {
			if !term.Phrase() {
				seqs, err := s.postings(termFields(term, q.Quotes), words[0])
				if err != nil {
					return fmt.Errorf("search %s: %w", list, err)
				}
				excluded = mergeSorted(excluded, seqs)
			}
			continue
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
	pending := map[uint64]bool{}
	var pend []uint64
	if err := s.pending.ForEach(func(k, _ []byte) error {
		seq := binary.BigEndian.Uint64(k)
		pending[seq] = true
		pend = append(pend, seq)
		return nil
	}); err != nil {
		return err
	}
	merged := s.list.Bucket(subMerged)
	threads := map[uint64]bool{}
	led := map[uint64]uint64{} // thread archived in → thread now
	heads := s.heads()
	visit := func(seq uint64) error {
		var v []byte // the document, read when it is needed
		head := heads.find(seq)
		if head == nil || pending[seq] {
			if v = s.docs.Get(u64(seq)); len(v) < docHead {
				return nil
			}
			head = v[:16]
		}
		date := docDate(head)
		for _, term := range q.Terms {
			switch {
			case term.Field == searchq.Before && (date.IsZero() || !date.Before(term.Date)) != term.Not,
				term.Field == searchq.After && (date.IsZero() || date.Before(term.Date)) != term.Not:
				return nil
			}
		}
		origin := binary.BigEndian.Uint64(head)
		th, ok := led[origin]
		if !ok {
			th = thread(merged, origin)
			led[origin] = th
		}
		if limit > 0 && len(threads) >= limit && !threads[th] {
			return nil
		}
		if _, out := slices.BinarySearch(excluded, seq); out && !pending[seq] {
			return nil
		}
		if v == nil {
			if v = s.docs.Get(u64(seq)); len(v) < docHead {
				return nil
			}
		}
		d, err := decodeDoc(v)
		if err != nil {
			return fmt.Errorf("post %d of %s: %w", seq, list, err)
		}
		if (check || pending[seq]) && !docMatches(d, q) {
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
	cand = mergeSorted(cand, pend)
	for i := len(cand) - 1; i >= 0; i-- {
		if err := visit(cand[i]); err != nil {
			return err
		}
	}
	return nil
}

// segmentHeads are the heads (sequence, thread, date) the segments keep of their posts.
type segmentHeads struct {
	ranges [][2]uint64 // of each segment: lowest and highest sequence
	heads  [][]byte    // of each segment: 24 bytes a post
}

func (s searchBuckets) heads() segmentHeads {
	var h segmentHeads
	_ = s.segs.ForEach(func(_, v []byte) error {
		if len(v) >= 16 && (len(v)-16)%24 == 0 {
			h.ranges = append(h.ranges, [2]uint64{binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])})
			h.heads = append(h.heads, v[16:])
		}
		return nil
	})
	return h
}

// find returns the thread and date of post seq (16 bytes, as a document begins), nil when no
// segment keeps it.
func (h segmentHeads) find(seq uint64) []byte {
	// Segments are made in sequence order but for posts indexed again: look from the one
	// whose range should hold seq.
	i, _ := slices.BinarySearchFunc(h.ranges, seq, func(r [2]uint64, seq uint64) int {
		if r[1] < seq {
			return -1
		}
		return 1
	})
	for ; i < len(h.ranges) && i >= 0; i++ {
		if h.ranges[i][0] > seq {
			break
		}
		heads := h.heads[i]
		n := len(heads) / 24
		j := sort.Search(n, func(j int) bool { return binary.BigEndian.Uint64(heads[24*j:]) >= seq })
		if j < n && binary.BigEndian.Uint64(heads[24*j:]) == seq {
			return heads[24*j+8 : 24*j+24]
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
	// One pass over every key of the segments: a word that contains a word of text brings
	// its posts.
	match := make([]bool, len(words))
	c := s.terms.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) < 10 {
			continue
		}
		term := k[9 : len(k)-1]
		var seqs []uint64
		for i, w := range words {
			if match[i] = bytes.Contains(term, []byte(w)); match[i] && seqs == nil {
				if seqs, err = decodePostings(k, v); err != nil {
					return nil, false, err
				}
			}
			if match[i] {
				sets[i] = append(sets[i], seqs...)
			}
		}
	}
	// The Other words of every post, and the words of the posts in no segment yet.
	if err := s.docs.ForEach(func(k, v []byte) error {
		other := docOther(v)
		for i, w := range words {
			if bytes.Contains(other, []byte(w)) {
				sets[i] = append(sets[i], binary.BigEndian.Uint64(k))
			}
		}
		return nil
	}); err != nil {
		return nil, false, err
	}
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
