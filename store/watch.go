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

// JobLocker is a transaction that can take the lock of a periodic job (a list's digest round,
// the sweeper), held until the transaction ends: on a database several processes share, each
// runs every job, and the lock keeps two from doing the same work at once. What makes the work
// happen once is still the transaction itself (a digest cursor checked at the commit); the lock
// spares the loser its writes and its retry.
type JobLocker interface {
	TryJob(name string) (bool, error)
}

// TryJob takes the lock of job name in tx when the backend has such locks, and says whether it
// got it; a backend that one process keeps (bbolt) has nothing to share, so yes.
func TryJob(tx Tx, name string) (bool, error) {
	if j, ok := tx.(JobLocker); ok {
		return j.TryJob(name)
	}
	return true, nil
}
