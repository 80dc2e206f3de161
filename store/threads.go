package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"crewmail/internal/vocab"
)

// Threads. Every Message-ID a list has seen, its posts' own and those they refer to (present or
// not: "ghost" ids still connect the replies that name them), maps to a thread. Two posts share
// a thread exactly when references connect them; a post that connects two threads merges them
// into the older one.
//
// A post keeps the thread it was archived in (its Origin, the thread of the nearest post it
// answers) and readers follow merges from there. Mutes stay with the thread that was muted:
// a merge made after a mute does not carry it over, so whoever writes References naming two
// conversations can neither hide one from a member who muted the other nor bring back the one
// she muted.

var (
	subThreadIDs = []byte("thread-ids") // Message-ID → thread
	subSubjects  = []byte("subjects")   // base subject → thread + date of its latest post
	subMutes     = []byte("mutes")      // thread + member ID → the merge count when muted
	subFollows   = []byte("follows")    // thread + member ID → the merge count when followed (made with the first)
	subCursors   = []byte("cursors")    // member address → Cursor
	// subMerged: a merged thread → the thread it was merged into + the merge's number (the
	// bucket's sequence; schema 6 merges have none and count as 0).
	subMerged = []byte("merged")
)

// thread is where thread th is now; merged is the list's record of merges. A merge does not rewrite the records of the threads it
// merges (posts, ids, subjects keep the number they had); it records where each went, and
// every reader follows that. Merges always go into the older, lower-numbered thread, so the
// way only descends and ends.
func thread(merged *bolt.Bucket, th uint64) uint64 {
	for {
		into, _, ok := mergedInto(merged, th)
		if !ok {
			return th
		}
		th = into
	}
}

// mergedInto says where thread th was merged and by which merge, ok false when it was not.
func mergedInto(merged *bolt.Bucket, th uint64) (into, stamp uint64, ok bool) {
	v := merged.Get(u64(th))
	if len(v) < 8 || binary.BigEndian.Uint64(v) >= th {
		return 0, 0, false
	}
	if len(v) >= 16 {
		stamp = binary.BigEndian.Uint64(v[8:])
	}
	return binary.BigEndian.Uint64(v), stamp, true
}

// FindThread returns the thread a post that refers to ids joins, as recorded for the first
// of ids that has one (list ids nearest parent first), 0 when none has. When ids belong to
// several threads, those are merged into the oldest.
func (t *boltTx) FindThread(list string, ids []string) (uint64, error) {
	b := t.listBucket(list)
	if b == nil {
		return 0, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	tids, merged := b.Bucket(subThreadIDs), b.Bucket(subMerged)
	var origin uint64
	var found []uint64
	for _, id := range ids {
		if v := tids.Get([]byte(id)); len(v) == 8 {
			if origin == 0 {
				origin = binary.BigEndian.Uint64(v)
			}
			if th := thread(merged, binary.BigEndian.Uint64(v)); !slices.Contains(found, th) {
				found = append(found, th)
			}
		}
	}
	if len(found) > 1 {
		slices.Sort(found)
		if err := mergeThreads(b, found[0], found[1:]); err != nil {
			return 0, fmt.Errorf("merge threads of %s: %w", list, err)
		}
	}
	return origin, nil
}

// mergeThreads makes the threads in from part of into: it records where they went (see
// thread), numbered, so that a mute made before knows it does not cover what the merge
// brought. Its cost does not grow with the archive (an import of a big archive with replies
// out of order merges often).
func mergeThreads(b *bolt.Bucket, into uint64, from []uint64) error {
	merged := b.Bucket(subMerged)
	for _, th := range from {
		stamp, err := merged.NextSequence()
		if err != nil {
			return err
		}
		if err := merged.Put(u64(th), binary.BigEndian.AppendUint64(u64(into), stamp)); err != nil {
			return err
		}
	}
	return nil
}

// IndexThread records that ids belong to thread and, when subject is not empty, that the
// latest post with that base subject in the thread is dated date. Ids recorded before keep
// their thread (which the merges of FindThread made the same): it says which conversation
// they started in, which mutes follow.
func (t *boltTx) IndexThread(list string, thread uint64, ids []string, subject string, date time.Time) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	tids := b.Bucket(subThreadIDs)
	for _, id := range ids {
		if tids.Get([]byte(id)) != nil {
			continue
		}
		if err := tids.Put([]byte(id), u64(thread)); err != nil {
			return err
		}
	}
	if subject == "" {
		return nil
	}
	subjects := b.Bucket(subSubjects)
	if v := subjects.Get([]byte(subject)); len(v) == 16 && int64(binary.BigEndian.Uint64(v[8:])) > date.Unix() {
		return nil // a later post with this subject is indexed already
	}
	v := binary.BigEndian.AppendUint64(u64(thread), uint64(date.Unix()))
	return subjects.Put([]byte(subject), v)
}

// SubjectThread returns the thread (as recorded, see FindThread) whose latest post with base
// subject subject is dated at or after since; ok false when there is none.
func (t *boltTx) SubjectThread(list, subject string, since time.Time) (th uint64, ok bool, err error) {
	b := t.listBucket(list)
	if b == nil {
		return 0, false, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	if subject == "" {
		return 0, false, nil
	}
	v := b.Bucket(subSubjects).Get([]byte(subject))
	if v == nil {
		return 0, false, nil
	}
	if len(v) != 16 {
		return 0, false, fmt.Errorf("damaged subject index entry %q of %s", subject, list)
	}
	if int64(binary.BigEndian.Uint64(v[8:])) < since.Unix() {
		return 0, false, nil
	}
	return binary.BigEndian.Uint64(v), true, nil
}

// Mute keeps thread th of list out of a member's mail: th as it is now, with the threads
// merged into it so far, and not what is merged into it later. th is the number a Mute link
// carries: the thread as the member saw it.
func (t *boltTx) Mute(list string, th, member uint64) error {
	return t.mark(list, subMutes, th, member)
}

// Unmute lets thread th of list reach a member again: it removes the member's mutes of th and
// of the threads th was merged into, any of which kept th's posts from her.
func (t *boltTx) Unmute(list string, th, member uint64) error {
	return t.unmark(list, subMutes, th, member)
}

// Muted returns the IDs of the members of list who muted the conversation of post p: a mute
// of the thread p was archived in, or of a thread that had it merged in before the mute.
func (t *boltTx) Muted(list string, p Post) (map[uint64]bool, error) {
	return t.marked(list, subMutes, p)
}

// Follow sends each post of thread th of list to a member at once, whatever her mode: th as
// it is now, with the threads merged into it so far, as for Mute. The follows of a list are
// kept in a bucket of their own, made with the first (older crewmails never look at it).
func (t *boltTx) Follow(list string, th, member uint64) error {
	return t.mark(list, subFollows, th, member)
}

// Unfollow undoes Follow, as Unmute undoes Mute.
func (t *boltTx) Unfollow(list string, th, member uint64) error {
	return t.unmark(list, subFollows, th, member)
}

// Followed returns the IDs of the members of list who follow the conversation of post p.
func (t *boltTx) Followed(list string, p Post) (map[uint64]bool, error) {
	return t.marked(list, subFollows, p)
}

// mark records that member muted (or follows) thread th, with the merge count of now.
func (t *boltTx) mark(list string, name []byte, th, member uint64) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	marks, err := b.CreateBucketIfNotExists(name)
	if err != nil {
		return err
	}
	return marks.Put(append(u64(th), u64(member)...), u64(b.Bucket(subMerged).Sequence()))
}

// unmark removes the member's marks of th and of the threads th was merged into.
func (t *boltTx) unmark(list string, name []byte, th, member uint64) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	marks, merged := b.Bucket(name), b.Bucket(subMerged)
	if marks == nil {
		return nil
	}
	for {
		if err := marks.Delete(append(u64(th), u64(member)...)); err != nil {
			return err
		}
		into, _, ok := mergedInto(merged, th)
		if !ok {
			return nil
		}
		th = into
	}
}

// marked returns the members with a mark on the conversation of post p: one of the thread p
// was archived in, or of a thread that had it merged in before the mark was made.
func (t *boltTx) marked(list string, name []byte, p Post) (map[uint64]bool, error) {
	b := t.listBucket(list)
	if b == nil {
		return nil, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	marks, merged := b.Bucket(name), b.Bucket(subMerged)
	if marks == nil {
		return nil, nil
	}
	th := p.Origin
	if th == 0 {
		th = p.Thread
	}
	var out map[uint64]bool
	var latest uint64 // the latest merge on the way from p's thread to th
	for {
		c := marks.Cursor()
		prefix := u64(th)
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(k) != 16 {
				return nil, fmt.Errorf("damaged %s entry %x of %s", name, k, list)
			}
			var when uint64 // mutes from before schema 7 count as made at merge 0
			switch len(v) {
			case 8:
				when = binary.BigEndian.Uint64(v)
			case 0:
			default:
				return nil, fmt.Errorf("damaged %s entry %x of %s", name, k, list)
			}
			if latest <= when {
				if out == nil {
					out = map[uint64]bool{}
				}
				out[binary.BigEndian.Uint64(k[8:])] = true
			}
		}
		into, stamp, ok := mergedInto(merged, th)
		if !ok {
			return out, nil
		}
		th, latest = into, max(latest, stamp)
	}
}

// Cursor is where a digest member's next digest starts.
type Cursor struct {
	Seq uint64    `json:"seq"` // the last post a digest (or the member's joining) covered
	Run time.Time `json:"run"` // the last scheduled digest time handled, sent or not
}

// Cursor returns a digest member's cursor, ok false when they have none. A cursor that cannot
// be read is an error, never taken for none: a member's digest starts at her cursor, and none
// would mean the whole archive.
func (t *boltTx) Cursor(list, addr string) (c Cursor, ok bool, err error) {
	b := t.listBucket(list)
	if b == nil {
		return c, false, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	if err := getJSON(b.Bucket(subCursors), []byte(addr), &c); errors.Is(err, ErrNotFound) {
		return Cursor{}, false, nil
	} else if err != nil {
		return Cursor{}, false, fmt.Errorf("digest cursor of %s on %s: %w", addr, list, err)
	}
	return c, true, nil
}

// PutCursor records a digest member's cursor.
func (t *boltTx) PutCursor(list, addr string, c Cursor) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	return putJSON(b.Bucket(subCursors), []byte(addr), c)
}

// followCursor keeps a member's digest cursor in step with her mode: a member who starts
// receiving digests starts where vocab.DigestStart says; one who receives them keeps her
// cursor; one who stops has none.
func followCursor(list *bolt.Bucket, m Member) error {
	cursors := list.Bucket(subCursors)
	after, digest := vocab.DigestStart(m.Mode, list.Bucket(subArchive).Sequence())
	if !digest {
		return cursors.Delete([]byte(m.Address))
	}
	if cursors.Get([]byte(m.Address)) != nil {
		return nil
	}
	return putJSON(cursors, []byte(m.Address), Cursor{Seq: after})
}

// LastSeq is the sequence of the newest post of list, 0 when it has none.
func (t *boltTx) LastSeq(list string) (uint64, error) {
	b := t.listBucket(list)
	if b == nil {
		return 0, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	return b.Bucket(subArchive).Sequence(), nil
}

// PostsAfter calls fn for the posts of list after seq, in sequence order.
func (t *boltTx) PostsAfter(list string, seq uint64, fn func(p Post, raw []byte) error) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	r, archive := recordsOf(b), b.Bucket(subArchive)
	c := r.posts.Cursor()
	for k, v := c.Seek(u64(seq + 1)); k != nil; k, v = c.Next() {
		p, err := r.decode(k, v)
		if err != nil {
			return fmt.Errorf("%s: %w", list, err)
		}
		if err := fn(p, archive.Get(k)); err != nil {
			return err
		}
	}
	return nil
}
