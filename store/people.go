package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// What the server holds about one person, across every list: moving it to another address,
// forgetting it, and taking a post's words away at its author's or an owner's request (issue
// 21). A redaction is also written to a journal beside the database file (JournalFile), so that
// a backup made before it and restored later has it applied again when it is opened.

// How a post was redacted (Post.Redacted).
const (
	RedactAnonymised = "anonymised" // name and address replaced by a stable pseudonym
	RedactRemoved    = "removed"    // the words replaced by a tombstone
)

// JournalFile is the redaction journal's name inside the data folder.
const JournalFile = "redactions.journal"

// Redaction is one entry of the redaction journal: the post (known by its list's incarnation,
// its sequence and its Message-ID, so an entry never applies to another list or post that has
// the number since) and what replaces it.
type Redaction struct {
	List        string    `json:"list"`
	Incarnation uint64    `json:"incarnation"`
	Seq         uint64    `json:"seq"`
	MessageID   string    `json:"message_id"`
	Post        Post      `json:"post"`
	Raw         []byte    `json:"raw"`
	At          time.Time `json:"at"`
}

// ChangeAddress moves everything kept under old to new on every list: each membership (with
// its member ID, so its mutes, follows and read state go with it), its digest cursor, the
// authorship of its archived posts (Post.From), and the app password. It returns the lists
// whose membership moved. ErrExists (nothing moved) when new is a member of a list old is on.
func (t *boltTx) ChangeAddress(old, new string) ([]string, error) {
	if old == new {
		return nil, nil
	}
	addrs, err := t.ListAddresses()
	if err != nil {
		return nil, err
	}
	var moved []string
	for _, list := range addrs {
		b := t.listBucket(list)
		members := b.Bucket(subMembers)
		if v := members.Get([]byte(old)); v != nil {
			if members.Get([]byte(new)) != nil {
				return nil, fmt.Errorf("%s on %s: %w", new, list, ErrExists)
			}
			var m Member
			if err := json.Unmarshal(v, &m); err != nil {
				return nil, fmt.Errorf("member %s of %s: %w", old, list, err)
			}
			m.Address = new
			if err := members.Delete([]byte(old)); err != nil {
				return nil, err
			}
			if err := putJSON(members, []byte(new), m); err != nil {
				return nil, err
			}
			if err := b.Bucket(subMemberIDs).Put(u64(m.ID), []byte(new)); err != nil {
				return nil, err
			}
			cursors := b.Bucket(subCursors)
			if c := cursors.Get([]byte(old)); c != nil {
				if err := cursors.Put([]byte(new), bytes.Clone(c)); err != nil {
					return nil, err
				}
				if err := cursors.Delete([]byte(old)); err != nil {
					return nil, err
				}
			}
			if err := writeRoster(b); err != nil {
				return nil, err
			}
			moved = append(moved, list)
		}
		// Authorship moves on every list, a member's or not (she may have left one).
		posts := b.Bucket(subPosts)
		var changed [][2][]byte
		if err := posts.ForEach(func(k, v []byte) error {
			var p Post
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("damaged post %x of %s: %w", k, list, err)
			}
			if p.From != old {
				return nil
			}
			p.From = new
			data, err := json.Marshal(p)
			if err != nil {
				return err
			}
			changed = append(changed, [2][]byte{bytes.Clone(k), data})
			return nil
		}); err != nil {
			return nil, err
		}
		for _, kv := range changed {
			if err := posts.Put(kv[0], kv[1]); err != nil {
				return nil, err
			}
			// Search's from: finds her posts under the new address (For takes the sender
			// as recorded). The post was archived before, and is bounded by the list's size.
			seq := binary.BigEndian.Uint64(kv[0])
			p, raw, err := t.Post(list, seq)
			if err != nil {
				return nil, err
			}
			if err := t.IndexPost(list, seq, NewSearchDoc(raw).For(p)); err != nil {
				return nil, err
			}
		}
	}
	pw := t.tx.Bucket(bucketPasswords)
	if v := pw.Get([]byte(old)); v != nil {
		if err := pw.Put([]byte(new), bytes.Clone(v)); err != nil {
			return nil, err
		}
		if err := pw.Delete([]byte(old)); err != nil {
			return nil, err
		}
	}
	return moved, nil
}

// ForgetMember takes addr off list with everything kept under its member ID: its read state,
// mutes and follows, the bounces kept from its address, its digest cursor, and the actions
// pending about it. ErrNotFound when it
// is not a member.
func (t *boltTx) ForgetMember(list, addr string) error {
	m, err := t.Member(list, addr)
	if err != nil {
		return err
	}
	if err := t.RemoveMember(list, addr); err != nil {
		return err
	}
	b := t.listBucket(list)
	if err := deletePrefix(b.Bucket(subFlags), u64(m.ID)); err != nil {
		return err
	}
	for _, name := range [][]byte{subMutes, subFollows} {
		marks := b.Bucket(name)
		if marks == nil {
			continue
		}
		var keys [][]byte
		if err := marks.ForEach(func(k, _ []byte) error {
			if len(k) == 16 && bytes.Equal(k[8:], u64(m.ID)) {
				keys = append(keys, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range keys {
			if err := marks.Delete(k); err != nil {
				return err
			}
		}
	}
	// What came back from her address: the bounces kept name her.
	bounces := b.Bucket(subBounces)
	var gone [][]byte
	if err := bounces.ForEach(func(k, v []byte) error {
		var bo Bounce
		if json.Unmarshal(v, &bo) == nil && bo.Member == m.ID {
			gone = append(gone, bytes.Clone(k))
		}
		return nil
	}); err != nil {
		return err
	}
	for _, k := range gone {
		if err := bounces.Delete(k); err != nil {
			return err
		}
	}
	var pending []uint64
	if err := t.PendingActions(list, func(p Pending) error {
		if p.Address == addr {
			pending = append(pending, p.ID)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, id := range pending {
		if err := t.DeletePending(list, id); err != nil {
			return err
		}
	}
	return nil
}

// deletePrefix removes the keys of b that begin with prefix.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// DeleteAppPassword removes addr's app password; none is not an error.
func (t *boltTx) DeleteAppPassword(addr string) error {
	return t.tx.Bucket(bucketPasswords).Delete([]byte(addr))
}

// RedactPost replaces archived post seq of list with p and raw, keeping its sequence,
// Message-ID and thread (the thread structure stays), and counts one more redaction on the
// list (List.Redactions) and re-indexes it for search: IMAP clients are told by a new UIDVALIDITY that what they cached
// under the old one is gone (RFC 9051 §2.3.1.1). A post redacted already the same way is left
// as it is (no new count), so a journal applied twice changes nothing.
func (t *boltTx) RedactPost(list string, seq uint64, p Post, raw []byte) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	var was Post
	if err := getJSON(b.Bucket(subPosts), u64(seq), &was); errors.Is(err, ErrNotFound) {
		return fmt.Errorf("post %d of %s: %w", seq, list, ErrNotFound)
	} else if err != nil {
		return err
	}
	if was.Redacted == p.Redacted && bytes.Equal(b.Bucket(subArchive).Get(u64(seq)), raw) {
		return nil
	}
	p.Seq, p.MessageID, p.Thread, p.Size = seq, was.MessageID, was.Thread, len(raw)
	if err := b.Bucket(subArchive).Put(u64(seq), raw); err != nil {
		return err
	}
	if err := putJSON(b.Bucket(subPosts), u64(seq), p); err != nil {
		return err
	}
	// The search index reads the redacted words from now on (a journal applied again at
	// opening re-indexes too).
	indexed := p
	indexed.Origin, indexed.Thread = was.Thread, thread(b.Bucket(subMerged), was.Thread)
	if err := t.IndexPost(list, seq, NewSearchDoc(raw).For(indexed)); err != nil {
		return err
	}
	var l List
	if err := getJSON(b, keyConfig, &l); err != nil {
		return err
	}
	l.Redactions++
	return putJSON(b, keyConfig, l)
}

// Journal appends r to the redaction journal and syncs it to disk, before the redaction is
// committed: a crash between the two leaves it to be applied at the next opening.
func (s *Store) Journal(r Redaction) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	path := filepath.Join(filepath.Dir(s.path), JournalFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("redaction journal: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("redaction journal: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("redaction journal: %w", err)
	}
	return f.Close()
}

// replayJournal applies every redaction of the journal beside the database that the database
// does not have (a backup from before it, restored): the post at its sequence, in the list of
// its incarnation, with its Message-ID. It returns how many it applied.
func (s *Store) replayJournal() (int, error) {
	f, err := os.Open(filepath.Join(filepath.Dir(s.path), JournalFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("redaction journal: %w", err)
	}
	defer f.Close()
	var entries []Redaction
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	for sc.Scan() {
		var r Redaction
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			// A line cut short by a crash while it was written was never committed.
			continue
		}
		entries = append(entries, r)
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("redaction journal: %w", err)
	}
	applied := 0
	for _, r := range entries {
		err := s.Update(func(tx Tx) error {
			l, err := tx.List(r.List)
			if err != nil || l.Incarnation != r.Incarnation {
				return nil // the list is gone, or another list has its address now
			}
			p, raw, err := tx.Post(r.List, r.Seq)
			if errors.Is(err, ErrNotFound) || (err == nil && p.MessageID != r.MessageID) {
				return nil
			} else if err != nil {
				return err
			}
			if p.Redacted == r.Post.Redacted && bytes.Equal(raw, r.Raw) {
				return nil
			}
			tx.AfterCommit(func() { applied++ })
			return tx.(*boltTx).RedactPost(r.List, r.Seq, r.Post, r.Raw)
		})
		if err != nil {
			return applied, fmt.Errorf("apply the redaction of post %d of %s: %w", r.Seq, r.List, err)
		}
	}
	return applied, nil
}

// MarksOf returns the threads of list the member muted and those she follows, ascending.
func (t *boltTx) MarksOf(list string, member uint64) (muted, followed []uint64, err error) {
	b := t.listBucket(list)
	if b == nil {
		return nil, nil, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	of := func(name []byte) ([]uint64, error) {
		var out []uint64
		marks := b.Bucket(name)
		if marks == nil {
			return nil, nil
		}
		err := marks.ForEach(func(k, _ []byte) error {
			if len(k) == 16 && bytes.Equal(k[8:], u64(member)) {
				out = append(out, binary.BigEndian.Uint64(k[:8]))
			}
			return nil
		})
		return out, err
	}
	if muted, err = of(subMutes); err != nil {
		return nil, nil, err
	}
	followed, err = of(subFollows)
	return muted, followed, err
}
