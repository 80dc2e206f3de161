package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// What the web reader keeps: the single-use sign-in links that were used, members' sessions,
// when a sign-in link was last mailed to each address, and where each member last looked in
// each list.
//
// The global buckets are made at opening when missing (webBuckets, see Store.prepare): they
// are new buckets an older binary never opens, so adding them needs no schema version. A
// list's "looked" bucket is made by the first write to it and goes with the list.

var (
	bucketSignIns     = []byte("web-signins")      // sign-in link ID → its expiry (unix seconds)
	bucketSessions    = []byte("web-sessions")     // session ID → Session
	bucketSessionsOf  = []byte("web-sessions-of")  // address + 0 + session ID → nothing
	bucketSignInMails = []byte("web-signin-mails") // address → when a sign-in link was last mailed (unix nanoseconds)
	subLooked         = []byte("web-looked")       // (in a list) member address → newest sequence she saw listed

	webBuckets = [][]byte{bucketSignIns, bucketSessions, bucketSessionsOf, bucketSignInMails}
)

// Session is a member signed in to the web reader: one browser. Its ID is a hash of the secret
// the browser's cookie holds, so that the database does not hold what signs anyone in.
type Session struct {
	ID      []byte    `json:"id"`
	Address string    `json:"address"`
	Created time.Time `json:"created"`
	Seen    time.Time `json:"seen"` // the latest request, to the minute
	Expires time.Time `json:"expires"`
	Agent   string    `json:"agent,omitempty"` // the browser, as its User-Agent names it (shortened)
}

// UseSignIn records that the single-use sign-in link id was used; ErrExists when it was used
// before. The record is kept until expires, after which the link is refused for its age.
func (t *boltTx) UseSignIn(id []byte, expires time.Time) error {
	b := t.tx.Bucket(bucketSignIns)
	if b.Get(id) != nil {
		return fmt.Errorf("sign-in link: %w", ErrExists)
	}
	return b.Put(id, u64(uint64(expires.Unix())))
}

// SignInUsed says whether the sign-in link id was used.
func (t *boltTx) SignInUsed(id []byte) (bool, error) {
	return t.tx.Bucket(bucketSignIns).Get(id) != nil, nil
}

// SignInMailed returns when a sign-in link was last mailed to addr; zero when never.
func (t *boltTx) SignInMailed(addr string) (time.Time, error) {
	v := t.tx.Bucket(bucketSignInMails).Get([]byte(addr))
	switch len(v) {
	case 0:
		return time.Time{}, nil
	case 8:
		return time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("damaged sign-in mail record of %s", addr)
}

// PutSignInMailed records that a sign-in link was mailed to addr at at.
func (t *boltTx) PutSignInMailed(addr string, at time.Time) error {
	return t.tx.Bucket(bucketSignInMails).Put([]byte(addr), u64(uint64(at.UnixNano())))
}

func sessionOfKey(addr string, id []byte) []byte {
	return append(append([]byte(addr), 0), id...)
}

// PutSession stores s, replacing the session with its ID.
func (t *boltTx) PutSession(s Session) error {
	if len(s.ID) == 0 || s.Address == "" {
		return fmt.Errorf("a session needs an ID and an address")
	}
	if err := putJSON(t.tx.Bucket(bucketSessions), s.ID, s); err != nil {
		return err
	}
	return t.tx.Bucket(bucketSessionsOf).Put(sessionOfKey(s.Address, s.ID), nil)
}

// Session returns the session id; ErrNotFound when there is none.
func (t *boltTx) Session(id []byte) (Session, error) {
	var s Session
	if err := getJSON(t.tx.Bucket(bucketSessions), id, &s); err != nil {
		return s, fmt.Errorf("session: %w", err)
	}
	return s, nil
}

// Sessions returns addr's sessions, the latest seen first.
func (t *boltTx) Sessions(addr string) ([]Session, error) {
	prefix := append([]byte(addr), 0)
	var out []Session
	c := t.tx.Bucket(bucketSessionsOf).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		s, err := t.Session(k[len(prefix):])
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	slices.SortStableFunc(out, func(a, b Session) int { return b.Seen.Compare(a.Seen) })
	return out, nil
}

// DeleteSession ends session id; ending one that is not there is no error.
func (t *boltTx) DeleteSession(id []byte) error {
	if s, err := t.Session(id); err == nil { // a damaged record goes all the same
		if err := t.tx.Bucket(bucketSessionsOf).Delete(sessionOfKey(s.Address, id)); err != nil {
			return err
		}
	}
	return t.tx.Bucket(bucketSessions).Delete(id)
}

// Looked returns the newest sequence of list that addr saw listed when she last looked at
// it; 0 when she never did.
func (t *boltTx) Looked(addr, list string) (uint64, error) {
	b := t.listBucket(list)
	if b == nil {
		return 0, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	looked := b.Bucket(subLooked)
	if looked == nil {
		return 0, nil
	}
	v := looked.Get([]byte(addr))
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("damaged record of where %s last looked in %s", addr, list)
	}
	return binary.BigEndian.Uint64(v), nil
}

// PutLooked records that addr saw list listed up to sequence seq.
func (t *boltTx) PutLooked(addr, list string, seq uint64) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	looked, err := b.CreateBucketIfNotExists(subLooked)
	if err != nil {
		return err
	}
	return looked.Put([]byte(addr), u64(seq))
}

// ExpireWeb forgets the used sign-in links and the sessions that expired before now, and the
// sign-in mail records older than a day; it returns how many records went.
func (t *boltTx) ExpireWeb(now time.Time) (int, error) {
	n := 0
	var gone [][]byte
	signins := t.tx.Bucket(bucketSignIns)
	if err := signins.ForEach(func(k, v []byte) error {
		if len(v) != 8 || int64(binary.BigEndian.Uint64(v)) < now.Unix() {
			gone = append(gone, slices.Clone(k))
		}
		return nil
	}); err != nil {
		return 0, err
	}
	for _, k := range gone {
		if err := signins.Delete(k); err != nil {
			return n, err
		}
		n++
	}
	gone = gone[:0]
	if err := t.tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
		var s Session
		if err := getJSON(t.tx.Bucket(bucketSessions), k, &s); err != nil || s.Expires.Before(now) {
			gone = append(gone, slices.Clone(k))
		}
		return nil
	}); err != nil {
		return 0, err
	}
	for _, k := range gone {
		if err := t.DeleteSession(k); err != nil {
			return n, err
		}
		n++
	}
	gone = gone[:0]
	mails := t.tx.Bucket(bucketSignInMails)
	if err := mails.ForEach(func(k, v []byte) error {
		if len(v) != 8 || now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(v)))) > 24*time.Hour {
			gone = append(gone, slices.Clone(k))
		}
		return nil
	}); err != nil {
		return 0, err
	}
	for _, k := range gone {
		if err := mails.Delete(k); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// makeWebBuckets makes the web reader's global buckets where they are missing.
func makeWebBuckets(tx *bolt.Tx) error {
	for _, name := range webBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}
