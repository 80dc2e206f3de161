package web

import (
	"cmp"
	"errors"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"crewmail/internal/rawmsg"
	"crewmail/internal/safetext"
	"crewmail/store"
)

// The reader's picture of each list's archive: its conversations, ordered by their latest
// post, and the posts of each. It is made by one pass over the post records and kept while the
// archive stays as it is: posts are only ever appended, and threads are merged only by the
// transaction that appends the post joining them, so the list's incarnation and newest
// sequence name one state of it. A page that finds them moved on reads the records again.

// convo is one conversation of a list.
type convo struct {
	Thread  uint64
	Subject string   // the first post's, without reply prefixes
	Seqs    []uint64 // its posts, oldest first
	Latest  time.Time
	Authors []string // the From addresses, in the order they first wrote
	Proven  int      // how many posts were proven to come from their authors
}

// LatestSeq is the newest post of the conversation.
func (c *convo) LatestSeq() uint64 { return c.Seqs[len(c.Seqs)-1] }

type listIndex struct {
	incarnation uint64
	last        uint64
	convos      []*convo // the latest activity first
	byThread    map[uint64]*convo
	posts       map[uint64]store.Post // without Evidence

	mu    sync.Mutex
	names map[string]string // From address → display name, as a post of theirs gives it
}

type archiveIndex struct {
	mu    sync.Mutex
	lists map[string]*listIndex
}

// of returns the index of list l as tx sees it. When the one kept is of an older state of the
// same list, the posts archived since are added to a copy of it, unless a merge moved one of
// its conversations (the first post of every conversation says where its thread is now); else
// the records are read again.
func (a *archiveIndex) of(tx store.Archive, l store.List) (*listIndex, error) {
	last, err := tx.LastSeq(l.Address)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	old := a.lists[l.Address]
	a.mu.Unlock()
	if old != nil && old.last == last && old.incarnation == l.Incarnation {
		return old, nil
	}
	var idx *listIndex
	if old != nil && old.incarnation == l.Incarnation && old.last < last {
		if idx, err = old.extend(tx, l.Address); err != nil {
			return nil, err
		}
	}
	if idx == nil {
		idx = &listIndex{incarnation: l.Incarnation, byThread: map[uint64]*convo{}, posts: map[uint64]store.Post{}, names: map[string]string{}}
		if err := tx.Posts(l.Address, func(p store.Post) error { idx.add(p); return nil }); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(idx.convos, func(x, y *convo) int { return cmp.Compare(y.LatestSeq(), x.LatestSeq()) })
	a.mu.Lock()
	if a.lists == nil {
		a.lists = map[string]*listIndex{}
	}
	if cur := a.lists[l.Address]; cur == nil || cur.last <= idx.last || cur.incarnation != idx.incarnation {
		a.lists[l.Address] = idx
	}
	a.mu.Unlock()
	return idx, nil
}

// add puts post p in the index.
func (idx *listIndex) add(p store.Post) {
	p.Evidence = nil
	idx.posts[p.Seq] = p
	idx.last = max(idx.last, p.Seq)
	c := idx.byThread[p.Thread]
	if c == nil {
		c = &convo{Thread: p.Thread, Subject: displaySubject(p.Subject)}
		idx.byThread[p.Thread] = c
		idx.convos = append(idx.convos, c)
	}
	c.Seqs = append(c.Seqs, p.Seq)
	c.Latest = p.Received
	if !slices.Contains(c.Authors, p.From) {
		c.Authors = append(c.Authors, p.From)
	}
	if p.Verified.ByAuthor() {
		c.Proven++
	}
}

// extend returns a copy of idx with the posts of list archived after it; nil when a merge
// moved one of its conversations since, and the records must be read again.
func (idx *listIndex) extend(tx store.Archive, list string) (*listIndex, error) {
	for _, c := range idx.convos {
		p, err := tx.PostMeta(list, c.Thread)
		if err != nil {
			return nil, err
		}
		if p.Thread != c.Thread {
			return nil, nil
		}
	}
	n := &listIndex{incarnation: idx.incarnation, last: idx.last, convos: make([]*convo, len(idx.convos)),
		byThread: make(map[uint64]*convo, len(idx.byThread)), posts: make(map[uint64]store.Post, len(idx.posts)), names: map[string]string{}}
	for i, c := range idx.convos {
		cc := *c // the slices are appended to only beyond their length: copies share nothing written
		cc.Seqs, cc.Authors = slices.Clip(cc.Seqs), slices.Clip(cc.Authors)
		n.convos[i], n.byThread[c.Thread] = &cc, &cc
	}
	for k, v := range idx.posts {
		n.posts[k] = v
	}
	idx.mu.Lock()
	for k, v := range idx.names {
		n.names[k] = v
	}
	idx.mu.Unlock()
	err := tx.PostsAfter(list, idx.last, func(p store.Post, _ []byte) error {
		if p.Thread != p.Origin && n.byThread[p.Origin] != nil {
			return errMerged // the post joined two conversations the index has
		}
		n.add(p)
		return nil
	})
	if errors.Is(err, errMerged) {
		return nil, nil
	}
	return n, err
}

var errMerged = errors.New("conversations merged")

// name is how the author at addr names herself in her posts (the display name of one of
// them, seq), "" when she does not. It is read once per author.
func (idx *listIndex) name(tx store.Archive, list, addr string, seq uint64) string {
	idx.mu.Lock()
	n, ok := idx.names[addr]
	idx.mu.Unlock()
	if ok {
		return n
	}
	if _, raw, err := tx.Post(list, seq); err == nil {
		n = fromName(raw)
	}
	idx.mu.Lock()
	idx.names[addr] = n
	idx.mu.Unlock()
	return n
}

// fromName is the display name of raw's From, made one safe line; "" when there is none or
// it looks like an address (safetext.Author).
func fromName(raw []byte) string {
	h, err := rawmsg.ReadHeader(raw)
	if err != nil {
		return ""
	}
	mh := gomail.Header{}
	mh.Set("From", h.Get("From"))
	as, err := mh.AddressList("From")
	if err != nil || len(as) != 1 {
		// A header go-message cannot read may still be one net/mail can.
		if a, err := mail.ParseAddress(h.Get("From")); err == nil {
			return safetext.Author(a.Name)
		}
		return ""
	}
	return safetext.Author(as[0].Name)
}

// replyPrefixes are the words mail clients put before a subject they answer or forward.
var replyPrefixes = []string{"re", "aw", "sv", "vs", "antw", "odp", "ynt", "fwd", "fw", "wg", "tr", "rv"}

// displaySubject is subject made one line, without the reply and forward prefixes and the
// list tags before it.
func displaySubject(subject string) string {
	s := safetext.Line(subject)
	for {
		s = strings.TrimSpace(s)
		if strings.HasPrefix(s, "[") {
			if end := strings.Index(s, "]"); end > 0 {
				s = s[end+1:]
				continue
			}
		}
		w, rest, ok := strings.Cut(s, ":")
		if !ok || !slices.Contains(replyPrefixes, strings.ToLower(strings.TrimSpace(w))) {
			break
		}
		s = rest
	}
	if s == "" {
		return "(no subject)"
	}
	return s
}
