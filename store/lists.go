package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"crewmail/internal/vocab"
)

// List is a mailing list's settings.
type List struct {
	Address       string           `json:"address"` // canonical crew@example.org
	Name          string           `json:"name"`
	Owners        []string         `json:"owners,omitempty"`
	Join          vocab.JoinPolicy `json:"join"`
	Post          vocab.PostPolicy `json:"post"`
	SubjectPrefix string           `json:"subject_prefix,omitempty"`
	ArchiveURL    string           `json:"archive_url,omitempty"`
	// AuthorIn is where the author goes when a copy must be sent From the list (DMARC);
	// empty: reply-to.
	AuthorIn vocab.AuthorIn `json:"author_in,omitempty"`
	// Moderated: every post waits for a moderator. NonMembers: what happens to a post from
	// someone who is not a member, when the post policy wants members; empty: reject.
	Moderated  bool             `json:"moderated,omitempty"`
	NonMembers vocab.NonMembers `json:"nonmembers,omitempty"`
	// Timezone of the list's digests and the times they show (IANA name); empty: the server's.
	Timezone string `json:"timezone,omitempty"`
	// PolicyBounces counts deliveries refused for policy or authentication (5.7.x, DMARC):
	// the list's problem, shown to the operator, never held against a member.
	PolicyBounces int       `json:"policy_bounces,omitempty"`
	LastPolicy    string    `json:"last_policy,omitempty"`
	LastPolicyAt  time.Time `json:"last_policy_at,omitzero"`
	// Moderators decide on held posts; empty means the owners.
	Moderators []string `json:"moderators,omitempty"`
	// Description says in a sentence what the list is for; Welcome is the owners' own text for
	// the welcome, paragraphs apart by an empty line. Both are the operator's words.
	Description string `json:"description,omitempty"`
	Welcome     string `json:"welcome,omitempty"`
	// Banned addresses (or "@domain" for a whole domain) may neither join nor post.
	Banned []string `json:"banned,omitempty"`
	// ModerateFirstPosts: a member's first post waits for the moderators.
	ModerateFirstPosts bool `json:"moderate_first_posts,omitempty"`
	// OwnerNotices is how owners hear of joins and leaves: "" (each as it happens) or
	// "daily" (one mail a day gathering them).
	OwnerNotices string    `json:"owner_notices,omitempty"`
	Created      time.Time `json:"created"`
	// Incarnation is a random number given at creation, under the MAC of every token made
	// for the list, so that a list removed and created again at the same address (whose
	// members and posts are numbered from 1 again) does not honour the old one's tokens.
	// Lists from before schema 7 have none (0) and keep the tokens they mailed.
	Incarnation uint64 `json:"incarnation,omitempty"`
	// PublicArchive: anyone may read the list's archive on the web; by default (false) only
	// its members. It is the owners' explicit choice (crewmail list set -archive public).
	PublicArchive bool `json:"public_archive,omitempty"`
	// HideAddresses: members see each other's names, never their addresses, in list copies
	// and digests; a private reply address (crew+p-TOKEN@) is how one answers an author alone.
	HideAddresses bool `json:"hide_addresses,omitempty"`
	// Directory is who may see the crew's directory (names, since when, brought in by whom,
	// proven posts): "owners" (the default, also ""), "members" or "off". InviteBy is who may
	// invite: owners ("") or "members", whose invitations the join policy then treats as
	// requests.
	Directory string `json:"directory,omitempty"`
	InviteBy  string `json:"invite_by,omitempty"`
	// Keep is how long posts stay in the archive before they are redacted to a tombstone
	// (0: for ever).
	Keep time.Duration `json:"keep,omitempty"`
	// Redactions counts the posts redacted: part of the IMAP UIDVALIDITY, so that a client
	// drops what it cached of them (RFC 9051 §2.3.1.1).
	Redactions uint32 `json:"redactions,omitempty"`
}

// Member is one subscriber of a list.
type Member struct {
	Address string     `json:"address"`
	ID      uint64     `json:"id"` // stable per list; names the member in VERP addresses
	Mode    vocab.Mode `json:"mode"`
	Added   time.Time  `json:"added"`
	// Bounces: the member's bounce score (a hard bounce counts 1, a soft one less), since when
	// it has been growing, and when delivery to them was paused for bouncing (zero: it is not).
	BounceScore float64   `json:"bounce_score,omitempty"`
	BouncedFrom time.Time `json:"bounced_from,omitzero"`
	Paused      time.Time `json:"paused,omitzero"`
	// PausedWhy is the last answer of her mail provider when delivery was paused.
	PausedWhy string `json:"paused_why,omitempty"`
	// Posted: a post of theirs went to the list (ModerateFirstPosts holds none after it).
	Posted bool `json:"posted,omitempty"`
	// NoOwnPosts: the member's own posts are not sent back to her (by mail nor in digests).
	NoOwnPosts bool `json:"no_own_posts,omitempty"`
	// Away: the member asked for no mail until AwayUntil (zero: she did not); AwayFrom is the
	// newest post when she went. When it ends, CatchUp is set until her catch-up digest (of
	// what came while she was away) is sent.
	AwayUntil time.Time `json:"away_until,omitzero"`
	AwayFrom  uint64    `json:"away_from,omitempty"`
	CatchUp   bool      `json:"catch_up,omitempty"`
	// ShowRead: her digests show in full the posts she has read already over IMAP (\Seen);
	// by default each is one line.
	ShowRead bool `json:"show_read,omitempty"`
	// How the membership began (issue 21, "who vouched for whom"): Origin is one of the
	// Origin* words; InvitedBy the owner or member who invited; ApprovedBy the owner who
	// approved the request; Consent says in a sentence how and when the member confirmed.
	// Added is when. Memberships from before have none (Origin empty: not recorded).
	Origin     string `json:"origin,omitempty"`
	InvitedBy  string `json:"invited_by,omitempty"`
	ApprovedBy string `json:"approved_by,omitempty"`
	Consent    string `json:"consent,omitempty"`
}

// BroughtBy says in words how m's membership began: "invited by ann@…", "approved by …",
// "joined on their own", "added by the operator"; empty when it was not recorded.
func (m Member) BroughtBy() string {
	switch m.Origin {
	case OriginInvited:
		return "invited by " + m.InvitedBy
	case OriginApproved:
		if m.InvitedBy != "" {
			return "invited by " + m.InvitedBy + ", approved by " + m.ApprovedBy
		}
		return "approved by " + m.ApprovedBy
	case OriginOpen:
		return "joined on their own"
	case OriginOperator:
		return "added by the operator"
	case OriginRejoined:
		return "came back after leaving"
	}
	return ""
}

// NewcomerWindow is how long after joining a member's posts say who brought her in.
const NewcomerWindow = 30 * 24 * time.Hour

// Newcomer is what digests and the web reader say beside m's post received at: "new member,
// invited by ann@…" within NewcomerWindow of her joining, "" after it or when how she joined
// was not recorded. hide: the list hides addresses, so the ones named are cut to their local
// parts.
func (m Member) Newcomer(at time.Time, hide bool) string {
	by := m.BroughtBy()
	if by == "" || at.Before(m.Added) || at.Sub(m.Added) > NewcomerWindow {
		return ""
	}
	if hide {
		for _, a := range []string{m.InvitedBy, m.ApprovedBy} {
			if local, _, ok := strings.Cut(a, "@"); ok {
				by = strings.ReplaceAll(by, a, local)
			}
		}
	}
	return "new member, " + by
}

// How a membership began (Member.Origin).
const (
	OriginOpen     = "open"     // joined an open list, confirming by mail
	OriginInvited  = "invited"  // accepted an invitation
	OriginApproved = "approved" // asked, confirmed, and an owner approved
	OriginOperator = "operator" // added by the operator (crewmail member add)
	OriginRejoined = "rejoined" // undid leaving
)

// Per-list sub-buckets.
var (
	keyConfig    = []byte("config")
	keyRoster    = []byte("roster") // who receives each post (vocab.ReceivesEachPost), kept with every member change
	subMembers   = []byte("members")
	subMemberIDs = []byte("member-ids")
	subArchive   = []byte("archive")
	subPosts     = []byte("posts")
	subMsgIDs    = []byte("message-ids")
	subBounces   = []byte("bounces")
	subHeld      = []byte("held")
	subPending   = []byte("pending")      // actions waiting for a confirmation, by ID
	subPendKeys  = []byte("pending-keys") // kind + address → pending ID
)

func (t *boltTx) listBucket(addr string) *bolt.Bucket {
	return t.tx.Bucket(bucketLists).Bucket([]byte(addr))
}

// listBuckets are the sub-buckets of every list.
var listBuckets = [][]byte{subMembers, subMemberIDs, subArchive, subPosts, subMsgIDs, subBounces, subHeld, subPending, subPendKeys,
	subThreadIDs, subSubjects, subMutes, subCursors, subFlags, subMerged, subSearchDocs, subSearchTerms, subSearchPending, subSearchSegments}

// CreateList stores a new list; ErrExists if one with that address is there.
func (t *boltTx) CreateList(l List) error {
	root := t.tx.Bucket(bucketLists)
	if root.Bucket([]byte(l.Address)) != nil {
		return fmt.Errorf("list %s: %w", l.Address, ErrExists)
	}
	b, err := root.CreateBucket([]byte(l.Address))
	if err != nil {
		return err
	}
	for _, name := range listBuckets {
		if _, err := b.CreateBucket(name); err != nil {
			return err
		}
	}
	for l.Incarnation == 0 {
		var r [8]byte
		if _, err := rand.Read(r[:]); err != nil {
			return err
		}
		l.Incarnation = binary.BigEndian.Uint64(r[:])
	}
	t.onCommit(func(s *Store) { s.incarnations.Store(l.Address, l.Incarnation) })
	return putJSON(b, keyConfig, l)
}

// onCommit runs fn once the transaction is on disk.
func (t *boltTx) onCommit(fn func(s *Store)) {
	if st := t.st; st != nil {
		t.AfterCommit(func() { fn(st) })
	}
}

// AfterCommit runs fn once the transaction is on disk, and never when it is not. An Update
// function may run more than once (group commit runs a batch again without the caller that
// failed in it), so whatever it does outside the transaction — waking delivery, counting in
// metrics — it asks for here: a run that is thrown away forgets what it asked. In a read
// transaction fn never runs.
func (t *boltTx) AfterCommit(fn func()) {
	t.committed = append(t.committed, fn)
}

// PutList replaces an existing list's settings. Its incarnation stays what creation made it.
func (t *boltTx) PutList(l List) error {
	b := t.listBucket(l.Address)
	if b == nil {
		return fmt.Errorf("list %s: %w", l.Address, ErrNotFound)
	}
	var was struct {
		Incarnation uint64 `json:"incarnation"`
	}
	if err := getJSON(b, keyConfig, &was); err != nil {
		return err
	}
	l.Incarnation = was.Incarnation
	return putJSON(b, keyConfig, l)
}

// List returns a list's settings.
func (t *boltTx) List(addr string) (List, error) {
	var l List
	b := t.listBucket(addr)
	if b == nil {
		return l, fmt.Errorf("list %s: %w", addr, ErrNotFound)
	}
	data := b.Get(keyConfig)
	if data == nil {
		return l, ErrNotFound
	}
	if t.st != nil {
		if l, ok := t.st.decoded.list(addr, data); ok {
			return l, nil
		}
	}
	if err := json.Unmarshal(data, &l); err != nil {
		return l, fmt.Errorf("damaged record %q: %w", keyConfig, err)
	}
	if t.st != nil {
		t.st.decoded.putList(addr, data, l)
	}
	return l, nil
}

// decoded keeps the settings of each list and the members that post, as last decoded, with
// the bytes they were decoded from. A post reads its list's settings and its author's record
// inside the write transaction every concurrent post waits on, and they seldom change between
// two posts: a read that finds the very same bytes takes the value decoded before, and no JSON
// is decoded on the way of a post. A record written since has other bytes and is decoded
// afresh. The zero value is ready.
type decoded struct {
	mu      sync.Mutex
	lists   map[string]decodedList
	members map[string]decodedMember // by list + "\x00" + address
}

type decodedList struct {
	raw []byte
	l   List
}

type decodedMember struct {
	raw []byte
	m   Member
}

// maxDecodedMembers bounds the members kept; past it the record starts again.
const maxDecodedMembers = 4096

// clone gives a caller a List of its own: its slices are not the ones kept.
func (l List) clone() List {
	l.Owners = slices.Clone(l.Owners)
	l.Moderators = slices.Clone(l.Moderators)
	l.Banned = slices.Clone(l.Banned)
	return l
}

func (d *decoded) list(addr string, raw []byte) (List, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.lists[addr]
	if !ok || !bytes.Equal(c.raw, raw) {
		return List{}, false
	}
	return c.l.clone(), true
}

func (d *decoded) putList(addr string, raw []byte, l List) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lists == nil {
		d.lists = map[string]decodedList{}
	}
	d.lists[addr] = decodedList{raw: bytes.Clone(raw), l: l.clone()}
}

func (d *decoded) member(key string, raw []byte) (Member, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.members[key]
	if !ok || !bytes.Equal(c.raw, raw) {
		return Member{}, false
	}
	return c.m, true
}

func (d *decoded) putMember(key string, raw []byte, m Member) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.members == nil || len(d.members) >= maxDecodedMembers {
		d.members = map[string]decodedMember{}
	}
	d.members[key] = decodedMember{raw: bytes.Clone(raw), m: m}
}

// Lists returns every list, ordered by address.
func (t *boltTx) Lists() ([]List, error) {
	var out []List
	addrs, err := t.ListAddresses()
	if err != nil {
		return nil, err
	}
	for _, addr := range addrs {
		l, err := t.List(addr)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// ListAddresses returns the address of every list, in order, without reading their settings.
func (t *boltTx) ListAddresses() ([]string, error) {
	var out []string
	err := t.tx.Bucket(bucketLists).ForEachBucket(func(k []byte) error {
		out = append(out, string(k))
		return nil
	})
	return out, err
}

// DeleteList removes a list with its members and archive.
func (t *boltTx) DeleteList(addr string) error {
	root := t.tx.Bucket(bucketLists)
	if root.Bucket([]byte(addr)) == nil {
		return fmt.Errorf("list %s: %w", addr, ErrNotFound)
	}
	t.onCommit(func(s *Store) { s.incarnations.Delete(addr) })
	return root.DeleteBucket([]byte(addr))
}

// AddMember subscribes m.Address to list, giving it an ID; ErrExists if already a member.
func (t *boltTx) AddMember(list string, m Member) (Member, error) {
	b := t.listBucket(list)
	if b == nil {
		return m, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	members := b.Bucket(subMembers)
	if members.Get([]byte(m.Address)) != nil {
		return m, fmt.Errorf("%s on %s: %w", m.Address, list, ErrExists)
	}
	id, err := members.NextSequence()
	if err != nil {
		return m, err
	}
	m.ID = id
	if err := b.Bucket(subMemberIDs).Put(u64(id), []byte(m.Address)); err != nil {
		return m, err
	}
	if err := putJSON(members, []byte(m.Address), m); err != nil {
		return m, err
	}
	if err := followCursor(b, m); err != nil {
		return m, err
	}
	return m, writeRoster(b)
}

// PutMember replaces an existing member's record.
func (t *boltTx) PutMember(list string, m Member) error {
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	members := b.Bucket(subMembers)
	if members.Get([]byte(m.Address)) == nil {
		return fmt.Errorf("%s on %s: %w", m.Address, list, ErrNotFound)
	}
	if err := putJSON(members, []byte(m.Address), m); err != nil {
		return err
	}
	if err := followCursor(b, m); err != nil {
		return err
	}
	return writeRoster(b)
}

// Member returns one member of list.
func (t *boltTx) Member(list, addr string) (Member, error) {
	var m Member
	b := t.listBucket(list)
	if b == nil {
		return m, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	v := b.Bucket(subMembers).Get([]byte(addr))
	if v == nil {
		return m, fmt.Errorf("%s on %s: %w", addr, list, ErrNotFound)
	}
	key := list + "\x00" + addr
	if t.st != nil {
		if m, ok := t.st.decoded.member(key, v); ok {
			return m, nil
		}
	}
	if err := json.Unmarshal(v, &m); err != nil {
		return m, err
	}
	if t.st != nil {
		t.st.decoded.putMember(key, v, m)
	}
	return m, nil
}

// MemberByID returns the member of list with the given ID.
func (t *boltTx) MemberByID(list string, id uint64) (Member, error) {
	b := t.listBucket(list)
	if b == nil {
		return Member{}, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	addr := b.Bucket(subMemberIDs).Get(u64(id))
	if addr == nil {
		return Member{}, fmt.Errorf("member %d of %s: %w", id, list, ErrNotFound)
	}
	return t.Member(list, string(addr))
}

// RemoveMember unsubscribes addr from list.
func (t *boltTx) RemoveMember(list, addr string) error {
	m, err := t.Member(list, addr)
	if err != nil {
		return err
	}
	b := t.listBucket(list)
	if err := b.Bucket(subMemberIDs).Delete(u64(m.ID)); err != nil {
		return err
	}
	if err := b.Bucket(subMembers).Delete([]byte(addr)); err != nil {
		return err
	}
	if err := b.Bucket(subCursors).Delete([]byte(addr)); err != nil {
		return err
	}
	return writeRoster(b)
}

// writeRoster records who receives each post (vocab.ReceivesEachPost) as one value, so that a
// post, which reads it inside the transaction every concurrent post waits on, decodes one
// record and not one per member.
func writeRoster(list *bolt.Bucket) error {
	var roster []byte
	err := list.Bucket(subMembers).ForEach(func(_, v []byte) error {
		var m Member
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		if vocab.ReceivesEachPost(m.Mode, !m.Paused.IsZero() || !m.AwayUntil.IsZero()) {
			roster = binary.AppendUvarint(roster, m.ID)
			roster = binary.AppendUvarint(roster, uint64(len(m.Address)))
			roster = append(roster, m.Address...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return list.Put(keyRoster, roster)
}

// Recipient is a member who receives each post.
type Recipient struct {
	ID      uint64
	Address string
}

// Recipients returns the members of list who receive each post (vocab.ReceivesEachPost).
func (t *boltTx) Recipients(list string) ([]Recipient, error) {
	b := t.listBucket(list)
	if b == nil {
		return nil, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	v := b.Get(keyRoster)
	var out []Recipient
	for len(v) > 0 {
		id, n := binary.Uvarint(v)
		if n <= 0 {
			return nil, fmt.Errorf("damaged roster of %s", list)
		}
		v = v[n:]
		size, n := binary.Uvarint(v)
		if n <= 0 || uint64(len(v)-n) < size {
			return nil, fmt.Errorf("damaged roster of %s", list)
		}
		out = append(out, Recipient{ID: id, Address: string(v[n : n+int(size)])})
		v = v[n+int(size):]
	}
	return out, nil
}

// Members returns the members of list, ordered by address.
func (t *boltTx) Members(list string) ([]Member, error) {
	b := t.listBucket(list)
	if b == nil {
		return nil, fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	var out []Member
	err := b.Bucket(subMembers).ForEach(func(_, v []byte) error {
		var m Member
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

func getJSON(b *bolt.Bucket, key []byte, v any) error {
	data := b.Get(key)
	if data == nil {
		return ErrNotFound
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("damaged record %q: %w", key, err)
	}
	return nil
}
