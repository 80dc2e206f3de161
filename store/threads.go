package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Threads. Every Message-ID a list has seen, its posts' own and those they refer to (present or
// not: "ghost" ids still connect the replies that name them), maps to a thread. Two posts share
// a thread exactly when references connect them; a post that connects two threads merges them
// into the older one.

var (
	subThreadIDs = []byte("thread-ids") // Message-ID → thread
	subSubjects  = []byte("subjects")   // base subject → thread + date of its latest post
	subMutes     = []byte("mutes")      // thread + member ID → ""
	subCursors   = []byte("cursors")    // member address → Cursor
	subMerged    = []byte("merged")     // a merged thread → the thread it was merged into
)

// thread is where thread th is now; merged is the list's record of merges. A merge does not rewrite the records of the threads it
// merges (posts, ids, subjects keep the number they had); it records where each went, and
// every reader follows that. Merges always go into the older, lower-numbered thread, so the
// way only descends and ends.
func thread(merged *bolt.Bucket, th uint64) uint64 {
	for {
		v := merged.Get(u64(th))
		if len(v) != 8 || binary.BigEndian.Uint64(v) >= th {
			return th
		}
		th = binary.BigEndian.Uint64(v)
	}
}

// FindThread returns the thread that any of ids belongs to, 0 when none does. When ids
// belong to several threads, those are merged into the oldest first, which is returned.
func (t *Tx) FindThread(list string, ids []string) (uint64, error) {
	b := t.listBucket(list)
	if b == nil {
		return 0, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	tids, merged := b.Bucket(subThreadIDs), b.Bucket(subMerged)
	var found []uint64
	for _, id := range ids {
		if v := tids.Get([]byte(id)); len(v) == 8 {
			if th := thread(merged, binary.BigEndian.Uint64(v)); !slices.Contains(found, th) {
				found = append(found, th)
			}
		}
	}
	if len(found) == 0 {
		return 0, nil
	}
	slices.Sort(found)
	if len(found) > 1 {
		if err := mergeThreads(b, found[0], found[1:]); err != nil {
			return 0, fmt.Errorf("merge threads of %s: %w", list, err)
		}
	}
	return found[0], nil
}

// mergeThreads makes the threads in from part of into: it records where they went (see
// thread) and moves their mutes. Its cost does not grow with the archive (an import of a big
// archive with replies out of order merges often).
func mergeThreads(b *bolt.Bucket, into uint64, from []uint64) error {
	merged := b.Bucket(subMerged)
	mutes := b.Bucket(subMutes)
	for _, th := range from {
		if err := merged.Put(u64(th), u64(into)); err != nil {
			return err
		}
		var keys [][]byte
		c := mutes.Cursor()
		for k, _ := c.Seek(u64(th)); k != nil && bytes.HasPrefix(k, u64(th)); k, _ = c.Next() {
			keys = append(keys, slices.Clone(k))
		}
		for _, k := range keys {
			if err := mutes.Delete(k); err != nil {
				return err
			}
			if err := mutes.Put(append(u64(into), k[8:]...), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// IndexThread records that ids belong to thread and, when subject is not empty, that the
// latest post with that base subject in the thread is dated date.
func (t *Tx) IndexThread(list string, thread uint64, ids []string, subject string, date time.Time) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	tids := b.Bucket(subThreadIDs)
	for _, id := range ids {
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

// SubjectThread returns the thread whose latest post with base subject subject is dated at or
// after since.
func (t *Tx) SubjectThread(list, subject string, since time.Time) (uint64, bool) {
	b := t.listBucket(list)
	if b == nil || subject == "" {
		return 0, false
	}
	v := b.Bucket(subSubjects).Get([]byte(subject))
	if len(v) != 16 || int64(binary.BigEndian.Uint64(v[8:])) < since.Unix() {
		return 0, false
	}
	return thread(b.Bucket(subMerged), binary.BigEndian.Uint64(v)), true
}

// Mute keeps thread of list out of a member's mail; Unmute undoes it.
func (t *Tx) Mute(list string, th, member uint64) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	return b.Bucket(subMutes).Put(append(u64(thread(b.Bucket(subMerged), th)), u64(member)...), nil)
}

// Unmute lets thread of list reach a member again.
func (t *Tx) Unmute(list string, th, member uint64) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	return b.Bucket(subMutes).Delete(append(u64(thread(b.Bucket(subMerged), th)), u64(member)...))
}

// Muted returns the IDs of the members of list who muted thread.
func (t *Tx) Muted(list string, th uint64) map[uint64]bool {
	b := t.listBucket(list)
	if b == nil {
		return nil
	}
	var out map[uint64]bool
	c := b.Bucket(subMutes).Cursor()
	prefix := u64(thread(b.Bucket(subMerged), th))
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if out == nil {
			out = map[uint64]bool{}
		}
		out[binary.BigEndian.Uint64(k[8:])] = true
	}
	return out
}

// Cursor is where a digest member's next digest starts.
type Cursor struct {
	Seq uint64    `json:"seq"` // the last post a digest (or the member's joining) covered
	Run time.Time `json:"run"` // the last scheduled digest time handled, sent or not
}

// Cursor returns a digest member's cursor.
func (t *Tx) Cursor(list, addr string) (Cursor, bool) {
	var c Cursor
	b := t.listBucket(list)
	if b == nil {
		return c, false
	}
	return c, getJSON(b.Bucket(subCursors), []byte(addr), &c) == nil
}

// PutCursor records a digest member's cursor.
func (t *Tx) PutCursor(list, addr string, c Cursor) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	return putJSON(b.Bucket(subCursors), []byte(addr), c)
}

// followCursor keeps a member's digest cursor in step with their mode: a member who starts
// receiving digests starts after the posts already archived (they had them, or joined after
// them); a member who stops has none.
func followCursor(list *bolt.Bucket, m Member) error {
	cursors := list.Bucket(subCursors)
	if m.Mode != "daily" && m.Mode != "weekly" {
		return cursors.Delete([]byte(m.Address))
	}
	if cursors.Get([]byte(m.Address)) != nil {
		return nil
	}
	return putJSON(cursors, []byte(m.Address), Cursor{Seq: list.Bucket(subArchive).Sequence()})
}

// LastSeq is the sequence of the newest post of list, 0 when it has none.
func (t *Tx) LastSeq(list string) uint64 {
	b := t.listBucket(list)
	if b == nil {
		return 0
	}
	return b.Bucket(subArchive).Sequence()
}

// PostsAfter calls fn for the posts of list after seq, in sequence order.
func (t *Tx) PostsAfter(list string, seq uint64, fn func(p Post, raw []byte) error) error {
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
