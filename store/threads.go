package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
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
)

// FindThread returns the thread that any of ids belongs to, 0 when none does. When ids
// belong to several threads, those are merged into the oldest first, which is returned.
func (t *Tx) FindThread(list string, ids []string) (uint64, error) {
	b := t.listBucket(list)
	if b == nil {
		return 0, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	tids := b.Bucket(subThreadIDs)
	var found []uint64
	for _, id := range ids {
		if v := tids.Get([]byte(id)); len(v) == 8 {
			if th := binary.BigEndian.Uint64(v); !slices.Contains(found, th) {
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

// mergeThreads makes every post, id, subject and mute of the threads in from belong to into.
// Merges are rare (a reply that arrives before what it answers, then its parent), so a scan of
// the list's records is fine.
func mergeThreads(b *bolt.Bucket, into uint64, from []uint64) error {
	posts := b.Bucket(subPosts)
	var changed [][2][]byte
	err := posts.ForEach(func(k, v []byte) error {
		var p Post
		if err := json.Unmarshal(v, &p); err != nil {
			return err
		}
		if slices.Contains(from, p.Thread) {
			p.Thread = into
			data, err := json.Marshal(p)
			if err != nil {
				return err
			}
			changed = append(changed, [2][]byte{slices.Clone(k), data})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, kv := range changed {
		if err := posts.Put(kv[0], kv[1]); err != nil {
			return err
		}
	}
	for _, name := range [][]byte{subThreadIDs, subSubjects} {
		bk := b.Bucket(name)
		var keys [][]byte
		var vals [][]byte
		err := bk.ForEach(func(k, v []byte) error {
			if len(v) >= 8 && slices.Contains(from, binary.BigEndian.Uint64(v)) {
				nv := slices.Clone(v)
				binary.BigEndian.PutUint64(nv, into)
				keys, vals = append(keys, slices.Clone(k)), append(vals, nv)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i := range keys {
			if err := bk.Put(keys[i], vals[i]); err != nil {
				return err
			}
		}
	}
	mutes := b.Bucket(subMutes)
	for _, th := range from {
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
	return binary.BigEndian.Uint64(v), true
}

// Mute keeps thread of list out of a member's mail; Unmute undoes it.
func (t *Tx) Mute(list string, thread, member uint64) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	return b.Bucket(subMutes).Put(append(u64(thread), u64(member)...), nil)
}

// Unmute lets thread of list reach a member again.
func (t *Tx) Unmute(list string, thread, member uint64) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	return b.Bucket(subMutes).Delete(append(u64(thread), u64(member)...))
}

// Muted returns the IDs of the members of list who muted thread.
func (t *Tx) Muted(list string, thread uint64) map[uint64]bool {
	b := t.listBucket(list)
	if b == nil {
		return nil
	}
	var out map[uint64]bool
	c := b.Bucket(subMutes).Cursor()
	prefix := u64(thread)
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
	posts, archive := b.Bucket(subPosts).Cursor(), b.Bucket(subArchive)
	for k, v := posts.Seek(u64(seq + 1)); k != nil; k, v = posts.Next() {
		var p Post
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("damaged post %x of %s: %w", k, list, err)
		}
		if err := fn(p, archive.Get(k)); err != nil {
			return err
		}
	}
	return nil
}
