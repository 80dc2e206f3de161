package postgres

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"crewmail/internal/searchq"
	"crewmail/store"
)

// The search index (store.Search): a row of search_docs per indexed post (see
// migrations/002_search.sql). The index is the GIN index on its terms; the words are those of
// the bbolt index (store.SearchDoc.Terms, store.TermKeys), and a post that needs its text read
// (a phrase) is checked by the same code (store.SearchDoc.Matches), so a query gives the same
// posts, in the same order, on both backends.

// searchChunk is how many documents a search reads at a time: fn runs between reads (it may
// use the transaction) and memory stays bounded.
const searchChunk = 128

// IndexPost indexes post seq of list as d says, replacing what was indexed for it before. Its
// writes go to the server with the transaction's next statement (with the post's deliveries).
func (t *tx) IndexPost(list string, seq uint64, d store.SearchDoc) error {
	if err := t.list(list); err != nil {
		return err
	}
	t.later(`UPDATE lists SET search_count = search_count + 1 WHERE address = $1
		AND NOT EXISTS (SELECT 1 FROM search_docs WHERE list = $1 AND seq = $2)`, list, int64(seq))
	t.later(insertSearchDoc+` ON CONFLICT (list, seq) DO UPDATE SET thread = excluded.thread, date = excluded.date,
		terms = excluded.terms, words = excluded.words, other = excluded.other, doc = excluded.doc`, searchRow(list, seq, d)...)
	return nil
}

const insertSearchDoc = "INSERT INTO search_docs (list, seq, thread, date, terms, words, other, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"

// searchRow is the row of search_docs that indexes post seq of list as d says.
func searchRow(list string, seq uint64, d store.SearchDoc) []any {
	terms := d.Terms()
	var words strings.Builder
	seen := map[string]bool{}
	for _, k := range terms {
		if w := k[1:]; w != "" && !seen[w] {
			seen[w] = true
			if words.Len() > 0 {
				words.WriteByte(' ')
			}
			words.WriteString(w)
		}
	}
	other := d.Other
	d.Other = ""
	var date int64
	if !d.Date.IsZero() {
		date = d.Date.Unix()
	}
	return args(list, int64(seq), int64(d.Thread), date, terms, words.String(), other, d.Encode())
}

// UnindexPost takes post seq out of list's index; a post not indexed is no error.
func (t *tx) UnindexPost(list string, seq uint64) error {
	if err := t.list(list); err != nil {
		return err
	}
	t.later(`UPDATE lists SET search_count = search_count - 1 WHERE address = $1
		AND EXISTS (SELECT 1 FROM search_docs WHERE list = $1 AND seq = $2)`, list, int64(seq))
	t.later("DELETE FROM search_docs WHERE list = $1 AND seq = $2", list, int64(seq))
	return nil
}

// SearchIndexed says whether every archived post of list is indexed.
func (t *tx) SearchIndexed(list string) (bool, error) {
	var complete bool
	found, err := t.row("SELECT search_count = seq FROM lists WHERE address = $1", args(list), &complete)
	if err != nil {
		return false, err
	}
	if !found {
		return false, fmt.Errorf("list %s: %w", list, store.ErrNotFound)
	}
	return complete, nil
}

// ClearSearch empties list's index.
func (t *tx) ClearSearch(list string) error {
	if err := t.list(list); err != nil {
		return err
	}
	if _, err := t.exec("DELETE FROM search_docs WHERE list = $1", list); err != nil {
		return err
	}
	_, err := t.exec("UPDATE lists SET search_count = 0 WHERE address = $1", list)
	return err
}

// candidate is a post the index found for a query, before its text is read.
type candidate struct {
	seq, origin uint64
	date        time.Time
}

// SearchPosts calls fn for the posts of list that match q, newest first; limit (0: no limit)
// bounds how many conversations they come from (store.Search).
//
// One query finds the candidates, newest first, through the GIN index: the posts that have,
// for every word of every term looked for, a key of one of the term's fields; another the
// posts with a key of an excluded word, left out. Dates and the conversations' limit are
// checked on what they give; then the documents of the posts shown are read, searchChunk at a
// time, and a phrase is checked in their text.
func (t *tx) SearchPosts(list string, q searchq.Query, limit int, fn func(store.Hit) error) error {
	if err := t.list(list); err != nil {
		return err
	}
	where := []string{"list = $1"}
	a := args(list)
	var excluding []string // the keys of the words excluded
	check := false
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
			// An excluded phrase is checked in the text; an excluded word is an index lookup.
			if !term.Phrase() {
				excluding = append(excluding, store.TermKeys(term, q.Quotes, words[0])...)
			}
			continue
		}
		for _, w := range words {
			a = append(a, store.TermKeys(term, q.Quotes, w))
			where = append(where, fmt.Sprintf("terms && $%d::text[]", len(a)))
		}
	}
	var cands []candidate
	err := t.rows("SELECT seq, thread, date FROM search_docs WHERE "+strings.Join(where, " AND ")+" ORDER BY seq DESC", a, func(r pgx.Rows) error {
		var seq, origin, date int64
		if err := r.Scan(&seq, &origin, &date); err != nil {
			return err
		}
		c := candidate{seq: uint64(seq), origin: uint64(origin)}
		if date != 0 {
			c.date = time.Unix(date, 0).UTC()
		}
		cands = append(cands, c)
		return nil
	})
	if err != nil {
		return fmt.Errorf("search %s: %w", list, err)
	}
	// The posts with an excluded word, found through the index as the candidates are (NOT &&
	// in the query above would read every candidate's keys).
	excluded := map[uint64]bool{}
	if len(excluding) > 0 && len(cands) > 0 {
		if err := t.rows("SELECT seq FROM search_docs WHERE list = $1 AND terms && $2::text[]", args(list, excluding), func(r pgx.Rows) error {
			var seq int64
			err := r.Scan(&seq)
			excluded[uint64(seq)] = true
			return err
		}); err != nil {
			return fmt.Errorf("search %s: %w", list, err)
		}
	}
	merges, err := t.merges(list)
	if err != nil {
		return err
	}
	threads := map[uint64]bool{}
	// shown says whether c may be a hit, as far as its date and the conversations found so
	// far tell.
	shown := func(c candidate) (uint64, bool) {
		if excluded[c.seq] {
			return 0, false
		}
		for _, term := range q.Terms {
			switch {
			case term.Field == searchq.Before && (c.date.IsZero() || !c.date.Before(term.Date)) != term.Not,
				term.Field == searchq.After && (c.date.IsZero() || c.date.Before(term.Date)) != term.Not:
				return 0, false
			}
		}
		th := merges.thread(c.origin)
		return th, limit <= 0 || len(threads) < limit || threads[th]
	}
	for len(cands) > 0 {
		// The next chunk of candidates that may be shown: conversations found while it is
		// gone through only ever leave out more, never fewer.
		var chunk []candidate
		var seqs []int64
		for len(cands) > 0 && len(chunk) < searchChunk {
			c := cands[0]
			cands = cands[1:]
			if _, ok := shown(c); ok {
				chunk = append(chunk, c)
				seqs = append(seqs, int64(c.seq))
			}
		}
		if len(chunk) == 0 {
			break
		}
		docs := make(map[uint64][]byte, len(chunk))
		if err := t.rows("SELECT seq, doc FROM search_docs WHERE list = $1 AND seq = ANY($2)", args(list, seqs), func(r pgx.Rows) error {
			var seq int64
			var doc []byte
			err := r.Scan(&seq, &doc)
			docs[uint64(seq)] = doc
			return err
		}); err != nil {
			return fmt.Errorf("search %s: %w", list, err)
		}
		for _, c := range chunk {
			th, ok := shown(c)
			if !ok {
				continue
			}
			v, ok := docs[c.seq]
			if !ok {
				continue // unindexed since, by fn: not a hit
			}
			d, err := store.DecodeSearchDoc(v)
			if err != nil {
				return fmt.Errorf("post %d of %s: %w", c.seq, list, err)
			}
			if check && !d.Matches(q) {
				continue
			}
			threads[th] = true
			if err := fn(store.Hit{Seq: c.seq, Thread: th, Date: d.Date, Lines: d.HitLines(q)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// SearchSubstrings returns, ascending, the posts of list with, for each word of text, a word
// that contains it (store.Search): a superset of those whose text holds text. ok is false when
// the index cannot tell (it is not complete, text has no word, or one longer than
// searchq.MaxWord/2).
func (t *tx) SearchSubstrings(list, text string) (seqs []uint64, ok bool, err error) {
	complete, err := t.SearchIndexed(list)
	if err != nil || !complete {
		return nil, false, err
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
	// A word holds no space: found in words or other, it is inside one word.
	where := []string{"list = $1"}
	a := args(list)
	for _, w := range words {
		a = append(a, w)
		where = append(where, fmt.Sprintf("(strpos(words, $%d) > 0 OR strpos(other, $%d) > 0)", len(a), len(a)))
	}
	seqs = []uint64{}
	err = t.rows("SELECT seq FROM search_docs WHERE "+strings.Join(where, " AND ")+" ORDER BY seq", a, func(r pgx.Rows) error {
		var seq int64
		err := r.Scan(&seq)
		seqs = append(seqs, uint64(seq))
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return seqs, true, nil
}
