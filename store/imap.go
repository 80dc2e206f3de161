package store

import (
	"encoding/binary"
	"fmt"
	"time"
)

// What members read the archive with over IMAP: their app password (one per address, for all
// their lists) and their flags on each archived post.

var (
	bucketPasswords = []byte("app-passwords") // address → AppPassword
	subFlags        = []byte("flags")         // member ID + sequence → flag bits
)

// Flags a member can keep on an archived post.
const (
	FlagSeen    byte = 1 << 0
	FlagFlagged byte = 1 << 1
)

// AppPassword is a member's password for reading archives over IMAP, stored only as a slow hash.
type AppPassword struct {
	Hash    []byte    `json:"hash"`
	Created time.Time `json:"created"`
}

// SetAppPassword stores addr's app password, replacing any earlier one.
func (t *boltTx) SetAppPassword(addr string, p AppPassword) error {
	return putJSON(t.tx.Bucket(bucketPasswords), []byte(addr), p)
}

// AppPasswordOf returns addr's app password.
func (t *boltTx) AppPasswordOf(addr string) (AppPassword, error) {
	var p AppPassword
	if err := getJSON(t.tx.Bucket(bucketPasswords), []byte(addr), &p); err != nil {
		return p, fmt.Errorf("app password of %s: %w", addr, err)
	}
	return p, nil
}

// ListsOf returns the lists addr is a member of, with its membership in each.
func (t *boltTx) ListsOf(addr string) ([]List, []Member, error) {
	all, err := t.Lists()
	if err != nil {
		return nil, nil, err
	}
	var ls []List
	var ms []Member
	for _, l := range all {
		if m, err := t.Member(l.Address, addr); err == nil {
			ls, ms = append(ls, l), append(ms, m)
		}
	}
	return ls, ms, nil
}

func flagKey(member, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(u64(member), seq)
}

// SetFlags records a member's flags on archived post seq of list.
func (t *boltTx) SetFlags(list string, member, seq uint64, flags byte) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	if flags == 0 {
		return b.Bucket(subFlags).Delete(flagKey(member, seq))
	}
	return b.Bucket(subFlags).Put(flagKey(member, seq), []byte{flags})
}

// FlagsOf calls fn for every archived post of list on which member keeps flags, in sequence
// order.
func (t *boltTx) FlagsOf(list string, member uint64, fn func(seq uint64, flags byte) error) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	c := b.Bucket(subFlags).Cursor()
	prefix := u64(member)
	for k, v := c.Seek(prefix); len(k) == 16 && string(k[:8]) == string(prefix); k, v = c.Next() {
		if len(v) == 1 {
			if err := fn(binary.BigEndian.Uint64(k[8:]), v[0]); err != nil {
				return err
			}
		}
	}
	return nil
}
