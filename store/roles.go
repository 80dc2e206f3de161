package store

import (
	"errors"
	"fmt"
	"time"

	"crewmail/internal/searchq"
)

// The store's roles: what a transaction offers, one interface per kind of record. The packages
// above take the smallest role a function uses (a digest read step takes Archive, IMAP login
// IMAPAccess), so what each one touches is written in its signature, and a backend other than
// this bbolt file (store/postgres) implements Tx and Backend and passes the conformance suite
// in store/storetest.
//
// Every role's records are the types of this package (List, Member, Post …); the errors a
// caller tests for are ErrNotFound and ErrExists, wrapped. Byte slices a role hands to a
// callback (a post's raw message) are valid only during the callback.

// Lists are the mailing lists' settings.
type Lists interface {
	// CreateList stores a new list with a fresh Incarnation; ErrExists if one with that
	// address is there.
	CreateList(l List) error
	// PutList replaces an existing list's settings; its incarnation stays what creation made.
	PutList(l List) error
	List(addr string) (List, error)
	// Lists returns every list, ordered by address.
	Lists() ([]List, error)
	// ListAddresses returns the address of every list, in order, without their settings.
	ListAddresses() ([]string, error)
	// DeleteList removes a list with everything it keeps.
	DeleteList(addr string) error
}

// Members are the subscribers of each list. A member change keeps the roster of who receives
// each post (vocab.ReceivesEachPost) and the member's digest cursor (vocab.DigestStart) in
// step, in the same transaction.
type Members interface {
	// AddMember subscribes m.Address, giving it the list's next member ID; ErrExists if
	// already a member.
	AddMember(list string, m Member) (Member, error)
	PutMember(list string, m Member) error
	Member(list, addr string) (Member, error)
	MemberByID(list string, id uint64) (Member, error)
	RemoveMember(list, addr string) error
	// Recipients are the members who receive each post, by member ID.
	Recipients(list string) ([]Recipient, error)
	// Members returns the members of list, ordered by address.
	Members(list string) ([]Member, error)
}

// Archive is each list's archived posts, numbered from 1 in the order they were archived, and
// the index of their Message-IDs. A post's Thread is where merges have led its thread.
type Archive interface {
	// MessageID looks up a Message-ID: ok false when no archived post has it.
	MessageID(list, id string) (seq uint64, ok bool, err error)
	// AppendPost archives raw under the next sequence; ErrExists for a Message-ID archived
	// before.
	AppendPost(list string, p Post, raw []byte) (Post, error)
	Post(list string, seq uint64) (p Post, raw []byte, err error)
	PostMeta(list string, seq uint64) (Post, error)
	// Posts calls fn for every archived post in sequence order.
	Posts(list string, fn func(Post) error) error
	// LastSeq is the sequence of the newest post, 0 when there is none. Sequences are given
	// one after the other from 1, and a post is never removed (a redaction replaces it in its place): the archive
	// holds exactly the posts 1…LastSeq (IMAP reads its mailbox from this alone).
	LastSeq(list string) (uint64, error)
	// PostsAfter calls fn for the posts after seq, in sequence order, with their bytes.
	PostsAfter(list string, seq uint64, fn func(p Post, raw []byte) error) error
}

// Bounces are what is kept of the messages that came to a list's bounce addresses: the latest
// MaxBounces, each cut to MaxBounceHead bytes.
type Bounces interface {
	AddBounce(list string, b Bounce) error
	// Bounces calls fn for the bounces kept, oldest first.
	Bounces(list string, fn func(Bounce) error) error
}

// Threads are each list's conversations: Message-IDs and base subjects to threads, the merges
// a post connecting two threads makes, and the members who muted or follow one.
type Threads interface {
	// FindThread is the thread of the first of ids the list has seen (0: none), merging
	// into it the threads of the others.
	FindThread(list string, ids []string) (uint64, error)
	IndexThread(list string, thread uint64, ids []string, subject string, date time.Time) error
	SubjectThread(list, subject string, since time.Time) (th uint64, ok bool, err error)
	Mute(list string, th, member uint64) error
	Unmute(list string, th, member uint64) error
	// Muted returns the IDs of the members who muted the conversation of post p.
	Muted(list string, p Post) (map[uint64]bool, error)
	// Follow sends each post of thread th to the member at once, whatever her mode.
	Follow(list string, th, member uint64) error
	Unfollow(list string, th, member uint64) error
	// Followed returns the IDs of the members who follow the conversation of post p.
	Followed(list string, p Post) (map[uint64]bool, error)
}

// Cursors are where each digest member's next digest starts. A cursor that cannot be read is
// an error, never taken for none.
type Cursors interface {
	Cursor(list, addr string) (c Cursor, ok bool, err error)
	PutCursor(list, addr string, c Cursor) error
}

// Holds are the posts waiting for their author's confirmation or a moderator.
type Holds interface {
	Hold(list string, h Held) (Held, error)
	PutHeld(list string, h Held) error
	HeldPost(list string, id uint64) (Held, error)
	// Release removes a held post (it was posted, or it expired).
	Release(list string, id uint64) error
	// HeldPosts calls fn for each held post, oldest first.
	HeldPosts(list string, fn func(Held) error) error
}

// Pendings are the actions waiting for a confirmation or a decision, at most one of each kind
// per address and list.
type Pendings interface {
	PendingFor(list, kind, addr string) (Pending, error)
	PendingByID(list string, id uint64) (Pending, error)
	// PutPending stores p under a new ID when p.ID is 0, replacing any of its kind and
	// address.
	PutPending(list string, p Pending) (Pending, error)
	DeletePending(list string, id uint64) error
	PendingActions(list string, fn func(Pending) error) error
}

// Outbox is the deliveries waiting to go, the shared messages (blobs) they carry, and the
// record of those that failed for good. Its rows are the truth about what is owed: a claim is
// a lease that a crash lets run out, never a removal.
type Outbox interface {
	Enqueue(d Delivery) (Delivery, error)
	// ClaimDue leases up to max deliveries due at now, in due order, recording an attempt.
	ClaimDue(now time.Time, lease time.Duration, max int) ([]Delivery, error)
	Delivered(d Delivery) error
	Retry(d Delivery, next time.Time, reason string) error
	Fail(d Delivery, now time.Time, reason string) error
	// ReleaseLeases makes the deliveries leased by this process due at now (a process starting
	// calls it): on the bbolt file, which one process uses, every leased delivery, since the
	// process that leased it is gone; on a database several processes (nodes) share, only the
	// leases of this one, which is a new node at every start, so none — another node's lease is
	// its own while it lives and runs out when it dies.
	ReleaseLeases(now time.Time) (int, error)
	NextDue() (due time.Time, ok bool, err error)
	Outbox(fn func(Delivery) error) error
	Failures(fn func(Failure) error) error
	OutboxSize() (int, error)
	// Reschedule makes a waiting delivery due at due; Drop takes it out of the outbox and
	// records it as failed with reason. Both refuse a leased delivery with ErrLeased, and
	// answer ErrNotFound for an ID not in the outbox.
	Reschedule(id uint64, due time.Time) (Delivery, error)
	Drop(id uint64, now time.Time, reason string) (Delivery, error)
	// PutBlob stores a message refs deliveries share; it goes with the last of them.
	PutBlob(data []byte, refs int) (uint64, error)
	Blob(id uint64) ([]byte, error)
}

// IMAPAccess is what members read the archive with over IMAP: their app password, the lists
// they belong to, and their flags on each archived post.
type IMAPAccess interface {
	SetAppPassword(addr string, p AppPassword) error
	AppPasswordOf(addr string) (AppPassword, error)
	ListsOf(addr string) ([]List, []Member, error)
	SetFlags(list string, member, seq uint64, flags byte) error
	FlagsOf(list string, member uint64, fn func(seq uint64, flags byte) error) error
}

// People is what the server holds about one person across every list (issue 21): moving it
// to another address, forgetting it, and taking a post's words away. A backend's Tx offers it
// besides Tx (bbolt's and PostgreSQL's do; callers ask with AsPeople).
type People interface {
	// ChangeAddress moves every membership of old (with its member ID, so its mutes, follows
	// and read state), its digest cursors, its app password and the authorship (Post.From)
	// of its archived posts to new (re-indexed for search); it returns the lists whose
	// membership moved. ErrExists, and nothing moved, when new is a member of a list old is
	// on.
	ChangeAddress(old, new string) ([]string, error)
	// ForgetMember removes addr from list with what is kept under its member ID (read state,
	// mutes, follows), its cursor and the actions pending about it; ErrNotFound when it is
	// not a member.
	ForgetMember(list, addr string) error
	// DeleteAppPassword removes addr's app password; none is not an error.
	DeleteAppPassword(addr string) error
	// MarksOf returns the threads of list the member muted and those she follows, as
	// muted or followed (before later merges), ascending.
	MarksOf(list string, member uint64) (muted, followed []uint64, err error)
	// RedactPost replaces post seq of list with p and raw, keeping its sequence, Message-ID
	// and thread, and adds one to the list's Redactions (a new IMAP UIDVALIDITY); a post
	// redacted already to the same bytes is left alone.
	RedactPost(list string, seq uint64, p Post, raw []byte) error
}

// ErrUnsupported is what AsPeople answers for a backend whose transactions lack the role.
var ErrUnsupported = errors.New("the store backend cannot do this yet")

// AsPeople is tx as People, or ErrUnsupported.
func AsPeople(tx Tx) (People, error) {
	if p, ok := tx.(People); ok {
		return p, nil
	}
	return nil, fmt.Errorf("a member's own data (change of address, forgetting, redaction): %w", ErrUnsupported)
}

// Journaled is a backend that keeps a redaction journal outside its database, applied again
// to a copy restored from before a redaction (the bbolt file: see Store.Journal).
type Journaled interface {
	// Journal makes r durable before the redaction is committed.
	Journal(r Redaction) error
}

// Web is what the web reader keeps: the single-use sign-in links used, members' sessions
// (one a browser, named by a hash of the cookie's secret), when a sign-in link was last mailed
// to an address, and where each member last looked in each list.
type Web interface {
	// UseSignIn records that sign-in link id was used; ErrExists when it was before. The
	// record may be forgotten after expires (ExpireWeb), when the link is refused for its age.
	UseSignIn(id []byte, expires time.Time) error
	// SignInUsed says whether sign-in link id was used (and not forgotten yet).
	SignInUsed(id []byte) (bool, error)
	// SignInMailed is when a sign-in link was last mailed to addr; zero when never.
	SignInMailed(addr string) (time.Time, error)
	PutSignInMailed(addr string, at time.Time) error
	// PutSession stores a session, replacing the one with its ID.
	PutSession(s Session) error
	// Session returns a session; ErrNotFound when there is none.
	Session(id []byte) (Session, error)
	// Sessions returns addr's sessions, the latest seen first.
	Sessions(addr string) ([]Session, error)
	// DeleteSession ends a session; one that is not there is no error.
	DeleteSession(id []byte) error
	// Looked is the newest sequence of list that addr saw listed (0: never looked); it goes
	// with the list.
	Looked(addr, list string) (uint64, error)
	PutLooked(addr, list string, seq uint64) error
	// ExpireWeb forgets used sign-in links and sessions expired before now, and sign-in mail
	// records older than a day; it returns how many records went.
	ExpireWeb(now time.Time) (int, error)
}

// Search is each list's search index: the archived posts' words, kept in the transaction that
// archives each post (lists indexes it beside AppendPost), and the searches it answers. A
// backend may keep it however it likes (bbolt: posting lists in buckets; PostgreSQL could use
// its full-text search) as long as the answers are the ones the conformance suite defines:
// words are normalized as searchq.Words does, a term matches as searchq documents, and a post
// either matches a query or not (there is no ranking).
type Search interface {
	// IndexPost indexes archived post seq of list as d says (NewSearchDoc, then For),
	// replacing what was indexed for it before.
	IndexPost(list string, seq uint64, d SearchDoc) error
	// UnindexPost takes post seq out of the index; a post not indexed is no error.
	UnindexPost(list string, seq uint64) error
	// SearchPosts calls fn for each indexed post of list that matches q, newest (highest
	// sequence) first, so that conversations come in the order of their latest matching
	// post. limit, when above 0, bounds the conversations: fn is called for every matching
	// post of the first limit conversations and no other. An error from fn ends the search
	// and is returned.
	SearchPosts(list string, q searchq.Query, limit int, fn func(Hit) error) error
	// SearchSubstrings returns, ascending, a superset of the posts whose text (as IMAP's
	// SEARCH TEXT reads it: every header field, every text part decoded) holds text, case
	// aside; ok false when the index cannot narrow the search (it is not complete, or text
	// has no word or a word longer than searchq.MaxWord/2 runes).
	SearchSubstrings(list, text string) (seqs []uint64, ok bool, err error)
	// SearchIndexed says whether every archived post of list is indexed (false after an
	// upgrade from a database without an index, until crewmail reindex).
	SearchIndexed(list string) (bool, error)
	// ClearSearch empties list's index, as reindexing begins.
	ClearSearch(list string) error
}

// Tx is a transaction: every role, and what is to happen once it is committed.
type Tx interface {
	Lists
	Members
	Archive
	Bounces
	Threads
	Cursors
	Holds
	Pendings
	Outbox
	IMAPAccess
	Web
	Search
	// AfterCommit runs fn once the transaction is committed, and never when it is not: an
	// Update function may run more than once (see Backend.Update), so whatever it does outside
	// the transaction — waking delivery, counting in metrics — it asks for here, and a run
	// that is thrown away forgets what it asked. In a read transaction fn never runs.
	AfterCommit(fn func())
}

// Backend is a database crewmail runs on: transactions over the roles, the server's secret,
// and the lists' incarnations.
type Backend interface {
	// View runs fn once, in a read-only transaction that sees one consistent state (a
	// snapshot: read-only, it never fails for another transaction's writes).
	View(fn func(Tx) error) error
	// Update runs fn in a read-write transaction that is durable when Update returns nil;
	// when fn returns an error, nothing it wrote is kept and Update returns that error. fn
	// may run more than once: bbolt's group commit runs a batch again without the caller
	// that failed in it, and a database with serializable transactions retries one that
	// failed on a conflict. So fn sets its results afresh on every run, has no effects
	// outside the transaction, and asks for what must happen once it is committed with
	// Tx.AfterCommit.
	Update(fn func(Tx) error) error
	// Secret is the server's random secret, made when the database was created.
	Secret() []byte
	// Incarnation is the List.Incarnation of the list at address now, as committed; 0 when
	// there is none.
	Incarnation(list string) uint64
	Close() error
}

// Faults make a backend fail on purpose, as a failing disk or an older bug would, for tests of
// what the packages above do then. Outside a test binary every method refuses and changes
// nothing. A backend offers them with a method Faults() Faults (see Faulty).
type Faults interface {
	// FailCommits makes the next n commits fail with err (n = 0 disarms it): the functions of
	// a transaction have all run, and then it is rolled back as when the disk refuses the
	// write, so every Update sharing it returns err and nothing of them is stored.
	FailCommits(n int, err error) error
	// DamageCursor overwrites the digest cursor of addr on list with bytes no reader accepts.
	DamageCursor(list, addr string) error
}

// Faulty is a backend whose failures tests can arm.
type Faulty interface {
	Faults() Faults
}

// Maintenance is what only a database file has: its path, a consistent copy while it runs, a
// check of its pages, and giving back the pages a process has read through its memory map.
type Maintenance interface {
	Path() string
	Backup(path string) (int64, error)
	Check() error
	Problems() ([]string, error)
	ReleaseMapped() error
}

// The bbolt transaction plays every role.
var (
	_ Backend     = (*Store)(nil)
	_ Tx          = (*boltTx)(nil)
	_ Lists       = (*boltTx)(nil)
	_ Members     = (*boltTx)(nil)
	_ Archive     = (*boltTx)(nil)
	_ Bounces     = (*boltTx)(nil)
	_ Threads     = (*boltTx)(nil)
	_ Cursors     = (*boltTx)(nil)
	_ Holds       = (*boltTx)(nil)
	_ Pendings    = (*boltTx)(nil)
	_ Outbox      = (*boltTx)(nil)
	_ IMAPAccess  = (*boltTx)(nil)
	_ People      = (*boltTx)(nil)
	_ Journaled   = (*Store)(nil)
	_ Web         = (*boltTx)(nil)
	_ Search      = (*boltTx)(nil)
	_ Faulty      = (*Store)(nil)
	_ Maintenance = (*Store)(nil)
)
