package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"crewmail/internal/vocab"
)

// Post is what the archive knows about one archived message besides its bytes.
type Post struct {
	Seq       uint64    `json:"seq"` // archive sequence; also the IMAP UID
	Received  time.Time `json:"received"`
	Date      time.Time `json:"date,omitzero"` // the author's Date header, when it parses
	MessageID string    `json:"message_id"`
	Thread    uint64    `json:"thread"` // sequence of the thread's first archived post
	From      string    `json:"from"`
	Subject   string    `json:"subject"`
	Size      int       `json:"size"`
	// How the author was found to be who the From says: by DKIM or SPF (DMARC-aligned, with
	// AuthDomain), by confirming, by a moderator's approval, or not at all (empty).
	Verified   vocab.Verified `json:"verified,omitempty"`
	AuthDomain string         `json:"auth_domain,omitempty"`
	// DKIMAligned: the author's own DKIM signature verified; DMARCPolicy: the author's domain's
	// published DMARC policy. They decide whether the list copy is sent From the list.
	DKIMAligned bool   `json:"dkim_aligned,omitempty"`
	DMARCPolicy string `json:"dmarc_policy,omitempty"`
	// Evidence are the Authentication-Results fields of the trusted front MTA's checkers the
	// post arrived with (unfolded, without the field name).
	Evidence []string `json:"evidence,omitempty"`
	// Redacted says how the post's words were taken away at its author's or an owner's
	// request (RedactAnonymised, RedactRemoved; empty: they were not), when and why.
	Redacted     string    `json:"redacted,omitempty"`
	RedactedAt   time.Time `json:"redacted_at,omitzero"`
	RedactReason string    `json:"redact_reason,omitempty"`
	// Origin is the thread the post was archived in, before the merges Thread follows: the
	// conversation mutes are about (see Muted).
	Origin uint64 `json:"-"`
}

// MessageID looks up a Message-ID in list's archive: ok false when the archive has no post
// with that id.
func (t *boltTx) MessageID(list, id string) (seq uint64, ok bool, err error) {
	b := t.listBucket(list)
	if b == nil {
		return 0, false, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	v := b.Bucket(subMsgIDs).Get([]byte(id))
	if v == nil {
		return 0, false, nil
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("damaged Message-ID index entry %q of %s", id, list)
	}
	return binary.BigEndian.Uint64(v), true, nil
}

// AppendPost archives raw in list under the next sequence and indexes its Message-ID.
// p.Seq is set by AppendPost; p.Thread is the thread it is archived in (as FindThread gives
// it), 0 for a thread of its own. The Post returned has that as Origin and, as Thread, where
// merges have led it.
func (t *boltTx) AppendPost(list string, p Post, raw []byte) (Post, error) {
	b := t.listBucket(list)
	if b == nil {
		return p, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	if _, dup, err := t.MessageID(list, p.MessageID); err != nil {
		return p, err
	} else if dup {
		return p, fmt.Errorf("message %s in %s: %w", p.MessageID, list, ErrExists)
	}
	// Sequences only ever grow, so leaves are filled rather than split in half (bbolt's
	// default leaves every page of an append-only bucket half empty).
	archive, posts := b.Bucket(subArchive), b.Bucket(subPosts)
	archive.FillPercent, posts.FillPercent = 0.95, 0.95
	seq, err := archive.NextSequence()
	if err != nil {
		return p, err
	}
	p.Seq = seq
	p.Size = len(raw)
	if p.Thread == 0 {
		p.Thread = seq
	}
	key := u64(seq)
	if err := archive.Put(key, raw); err != nil {
		return p, err
	}
	if err := putJSON(posts, key, p); err != nil {
		return p, err
	}
	p.Origin, p.Thread = p.Thread, thread(b.Bucket(subMerged), p.Thread)
	return p, b.Bucket(subMsgIDs).Put([]byte(p.MessageID), key)
}

// postRecords reads a list's post records, each with the thread its post is in now (see
// thread): the one way every reader of posts decodes them.
type postRecords struct{ posts, merged *bolt.Bucket }

func recordsOf(list *bolt.Bucket) postRecords {
	return postRecords{list.Bucket(subPosts), list.Bucket(subMerged)}
}

func (r postRecords) decode(k, v []byte) (Post, error) {
	var p Post
	if err := json.Unmarshal(v, &p); err != nil {
		return p, fmt.Errorf("damaged post %x: %w", k, err)
	}
	p.Origin, p.Thread = p.Thread, thread(r.merged, p.Thread)
	return p, nil
}

// get reads the record of post seq; ErrNotFound when there is none.
func (r postRecords) get(seq uint64) (Post, error) {
	v := r.posts.Get(u64(seq))
	if v == nil {
		return Post{}, ErrNotFound
	}
	return r.decode(u64(seq), v)
}

// Post returns an archived post; raw is a copy of its bytes.
func (t *boltTx) Post(list string, seq uint64) (p Post, raw []byte, err error) {
	b := t.listBucket(list)
	if b == nil {
		return p, nil, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	v := b.Bucket(subArchive).Get(u64(seq))
	if v == nil {
		return p, nil, fmt.Errorf("post %d of %s: %w", seq, list, ErrNotFound)
	}
	if p, err = recordsOf(b).get(seq); err != nil {
		return p, nil, fmt.Errorf("post %d of %s: %w", seq, list, err)
	}
	return p, append([]byte(nil), v...), nil
}

// PostMeta returns an archived post's record without its bytes.
func (t *boltTx) PostMeta(list string, seq uint64) (Post, error) {
	b := t.listBucket(list)
	if b == nil {
		return Post{}, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	p, err := recordsOf(b).get(seq)
	if err != nil {
		return p, fmt.Errorf("post %d of %s: %w", seq, list, err)
	}
	return p, nil
}

// Posts calls fn for every archived post of list in sequence order.
func (t *boltTx) Posts(list string, fn func(Post) error) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	r := recordsOf(b)
	return r.posts.ForEach(func(k, v []byte) error {
		p, err := r.decode(k, v)
		if err != nil {
			return fmt.Errorf("%s: %w", list, err)
		}
		return fn(p)
	})
}

// Bounce is what is kept of a message that came to a member's bounce address: what bounce
// handling read in it and its first bytes, for the operator. The rest is not kept: anyone who
// has seen a bounce address can send to it, and all of it would stay in the database.
type Bounce struct {
	Received   time.Time `json:"received"`
	Member     uint64    `json:"member,omitempty"` // 0: the address named nobody (any more)
	Kind       string    `json:"kind,omitempty"`   // what the report says, "" when unreadable
	Status     string    `json:"status,omitempty"`
	Diagnostic string    `json:"diagnostic,omitempty"`
	Size       int       `json:"size"` // of the whole message
	Head       []byte    `json:"head"` // its first MaxBounceHead bytes
}

const (
	// MaxBounceHead is how much of a bounce message is kept: enough for the report part of
	// a delivery status notification, which comes before the returned message (RFC 3464 §2).
	MaxBounceHead = 64 << 10
	// MaxBounces is how many of its latest bounce messages a list keeps.
	MaxBounces = 100
)

// AddBounce keeps what b says about a message that arrived at list's bounce address, its head
// cut to MaxBounceHead, and forgets the list's oldest bounces beyond MaxBounces.
func (t *boltTx) AddBounce(list string, b Bounce) error {
	lb := t.listBucket(list)
	if lb == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	if len(b.Head) > MaxBounceHead {
		b.Head = b.Head[:MaxBounceHead]
	}
	bounces := lb.Bucket(subBounces)
	seq, err := bounces.NextSequence()
	if err != nil {
		return err
	}
	if err := putJSON(bounces, u64(seq), b); err != nil {
		return err
	}
	return trimBounces(bounces, seq)
}

// trimBounces deletes the bounces older than the MaxBounces latest (up to last).
func trimBounces(bounces *bolt.Bucket, last uint64) error {
	var old [][]byte
	c := bounces.Cursor()
	for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k)+MaxBounces <= last; k, _ = c.Next() {
		old = append(old, append([]byte(nil), k...))
	}
	for _, k := range old {
		if err := bounces.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Bounces calls fn for the bounces list keeps, oldest first.
func (t *boltTx) Bounces(list string, fn func(Bounce) error) error {
	lb := t.listBucket(list)
	if lb == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	return lb.Bucket(subBounces).ForEach(func(k, v []byte) error {
		var b Bounce
		if err := json.Unmarshal(v, &b); err != nil {
			return fmt.Errorf("damaged bounce %x: %w", k, err)
		}
		return fn(b)
	})
}

// Kinds of held posts: what a post waits for.
const (
	HeldForAuthor    = "author"    // its author's confirmation (it could not be verified)
	HeldForModerator = "moderator" // a moderator's decision
)

// Held is a post waiting for something before it reaches the list.
type Held struct {
	ID uint64 `json:"id"`
	// Kind is HeldForAuthor or HeldForModerator; records from before moderation have none and
	// wait for their author.
	Kind   string `json:"kind,omitempty"`
	From   string `json:"from"` // the address it claims to come from
	Reason string `json:"reason"`
	// Verified is how the author was proven (DKIM, SPF, confirming), empty when not.
	Verified   vocab.Verified `json:"verified,omitempty"`
	AuthDomain string         `json:"auth_domain,omitempty"`
	// DKIMAligned: the author's own signature survives an unchanged list copy.
	DKIMAligned bool      `json:"dkim_aligned,omitempty"`
	Received    time.Time `json:"received"`
	Expires     time.Time `json:"expires"`
	Raw         []byte    `json:"raw"` // as it would have been archived
	// DMARCPolicy of the author's domain, for the list copy once released.
	DMARCPolicy string `json:"dmarc_policy,omitempty"`
	// Unnoticed: it waits for the moderators, who have not been sent it yet.
	Unnoticed bool `json:"unnoticed,omitempty"`
	// Evidence: the trusted front MTA's Authentication-Results it arrived with (Post.Evidence).
	Evidence []string `json:"evidence,omitempty"`
	// Excerpt is how it begins, its first lines, read when it came (before the write
	// transaction), for the mail that asks its author or the moderators about it.
	Excerpt []string `json:"excerpt,omitempty"`
}

// Hold keeps h in list's held posts and returns it with its ID.
func (t *boltTx) Hold(list string, h Held) (Held, error) {
	b := t.listBucket(list)
	if b == nil {
		return h, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	held := b.Bucket(subHeld)
	id, err := held.NextSequence()
	if err != nil {
		return h, err
	}
	h.ID = id
	return h, putJSON(held, u64(id), h)
}

// PutHeld replaces an existing held post's record.
func (t *boltTx) PutHeld(list string, h Held) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	held := b.Bucket(subHeld)
	if held.Get(u64(h.ID)) == nil {
		return fmt.Errorf("held post %d of %s: %w", h.ID, list, ErrNotFound)
	}
	return putJSON(held, u64(h.ID), h)
}

// HeldPost returns one held post.
func (t *boltTx) HeldPost(list string, id uint64) (Held, error) {
	var h Held
	b := t.listBucket(list)
	if b == nil {
		return h, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	if err := getJSON(b.Bucket(subHeld), u64(id), &h); err != nil {
		return h, fmt.Errorf("held post %d of %s: %w", id, list, err)
	}
	return h, nil
}

// Release removes a held post (it was posted, or it expired).
func (t *boltTx) Release(list string, id uint64) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	return b.Bucket(subHeld).Delete(u64(id))
}

// HeldPosts calls fn for each held post of list, oldest first.
func (t *boltTx) HeldPosts(list string, fn func(Held) error) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	return b.Bucket(subHeld).ForEach(func(k, v []byte) error {
		var h Held
		if err := json.Unmarshal(v, &h); err != nil {
			return fmt.Errorf("damaged held post %x: %w", k, err)
		}
		return fn(h)
	})
}
