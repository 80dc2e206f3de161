package store

// Change is something committed that a server shows or acts on at once: a post archived in
// List (IMAP IDLE sessions report it), a member's flags changed on List (her other sessions
// report them), deliveries waiting in the outbox (the delivery workers look).
type Change struct {
	Kind   ChangeKind
	List   string
	Member uint64 // ChangeFlags: whose flags
}

// ChangeKind says what a Change is about.
type ChangeKind int

// The kinds of changes.
const (
	ChangePost ChangeKind = iota + 1
	ChangeFlags
	ChangeOutbox
)

// Watcher is a backend that several processes share: it tells fn of the changes the others
// commit (what this process commits, it knows already). When it may have missed some (its
// connection was lost and made again), it tells one of each kind with no list, which means
// "look at everything". fn runs on a goroutine of the backend's, one change at a time, and
// must not block. The bbolt file, which one process keeps, is no Watcher.
type Watcher interface {
	Watch(fn func(Change))
}
