package delivery

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"crewmail/store"
)

// recorder writes the outcomes of attempts in batches: each attempt hands over the store
// updates that record it and its worker goes on to the next delivery, and whatever outcomes
// are waiting when the previous commit is done are written in one transaction, several role
// calls in one Update. A worker that waited for its own commit spent most of its time waiting
// for the disk: the deliveries a second were the workers ÷ the time of an fsync.
//
// Until its outcome is committed, a row stays leased: a crash before then sends it again when
// the lease runs out, as it always could between the send and the record. An outcome the store
// could not take (the disk refused the commit, the database went away for a failover) is kept
// and written again, after 1 s, then twice as long each time up to 30 s, until the store takes
// it, its lease ends (the row is then due to be attempted again, by this node or another, and
// a late outcome would overwrite what that attempt records) or the queue stops. Otherwise a
// deferral the database missed for a moment would wait out the whole lease, 30 minutes, and
// on PostgreSQL not even a restart gives it back sooner: a restarted node is a new node.
type recorder struct {
	st store.Backend
	// now is the queue's clock, which leases are measured on; written is called after the
	// store took outcomes that may make a row due before the queue expects (a deferral, an
	// outcome written late): the queue then reads when the next row is due again.
	now     func() time.Time
	written func()

	mu      sync.Mutex
	pending []outcomeUpdate
	wake    chan struct{} // one slot: outcomes are pending
	stop    chan struct{} // closed: write what is pending and return
	done    chan struct{} // closed when run returns

	// kept are the outcomes the store did not take, to be written again after backoff (run's
	// own: no lock).
	kept    []outcomeUpdate
	backoff time.Duration
}

// outcomeUpdate is what records one attempt, and the log of that delivery.
type outcomeUpdate struct {
	fn  func(store.Tx) error
	log attemptLog
	// until is the end of the row's lease (zero: none): the outcome is not written after it.
	until time.Time
	// soon: the row becomes due again before its lease ends (a deferral).
	soon bool
	// tries counts the writes the store refused.
	tries int
}

const (
	// maxRecordBatch bounds the outcomes written in one transaction.
	maxRecordBatch = 512
	// recordRetry and recordRetryMax are the first and the longest wait before an outcome the
	// store refused is written again.
	recordRetry    = time.Second
	recordRetryMax = 30 * time.Second
)

func newRecorder(st store.Backend, now func() time.Time, written func()) *recorder {
	r := &recorder{st: st, now: now, written: written, backoff: recordRetry,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r
}

// add queues an outcome; it never waits for the disk.
func (r *recorder) add(u outcomeUpdate) {
	r.mu.Lock()
	r.pending = append(r.pending, u)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// close writes every outcome added before it and stops the recorder.
func (r *recorder) close() {
	close(r.stop)
	<-r.done
}

func (r *recorder) run() {
	defer close(r.done)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		stopping := false
		var again <-chan time.Time
		if len(r.kept) > 0 {
			retry.Reset(r.backoff)
			again = retry.C
		}
		select {
		case <-r.wake:
		case <-again:
		case <-r.stop:
			stopping = true
		}
		retry.Stop()
		// What was kept goes first, with what came since: an outcome that waits does not
		// hold up the others, and when the store is back they go in one commit.
		batch := r.kept
		r.kept = nil
		refused := false
		for {
			r.mu.Lock()
			n := min(len(r.pending), max(maxRecordBatch-len(batch), 0))
			batch = append(batch, r.pending[:n]...)
			r.pending = r.pending[n:]
			if len(r.pending) == 0 {
				r.pending = nil
			}
			r.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			refused = r.write(batch) || refused
			batch = nil
		}
		switch {
		case refused:
			r.backoff = min(2*r.backoff, recordRetryMax)
		default:
			r.backoff = recordRetry
		}
		if stopping {
			for _, u := range r.kept {
				u.log.Error("delivery outcome not recorded before the stop; the delivery is attempted again at the next start or when its lease ends")
			}
			return
		}
	}
}

// write commits batch in one transaction. Should one of its outcomes fail on its own (its
// bounce accounting refuses, say), each is written alone, so that it holds up only itself.
// An outcome the store did not take is kept, to be written again; refused says whether there
// was one.
func (r *recorder) write(batch []outcomeUpdate) (refused bool) {
	now := r.now()
	live := make([]outcomeUpdate, 0, len(batch))
	for _, u := range batch {
		if !u.until.IsZero() && !now.Before(u.until) {
			// The row is due again: its next attempt records what happens to it.
			u.log.Error("delivery outcome not recorded before its lease ended; the delivery is attempted again", "tries", u.tries)
			continue
		}
		live = append(live, u)
	}
	if len(live) == 0 {
		return false
	}
	err, own := r.commit(live)
	switch {
	case err == nil:
		r.taken(live)
		return false
	case !own || len(live) == 1:
		for _, u := range live {
			r.refused(u, err)
		}
		return r.stored(err)
	}
	for _, u := range live {
		if err, _ := r.commit([]outcomeUpdate{u}); err != nil {
			r.refused(u, err)
			refused = refused || r.stored(err)
		} else {
			r.taken([]outcomeUpdate{u})
		}
	}
	return refused
}

// errOutcomePanicked: recording an outcome panicked; it is not written again.
var errOutcomePanicked = errors.New("recording the outcome panicked")

// commit runs the updates of batch in one transaction; own says the error came from one of
// them (a refusal, or a store error on the way), not from the commit.
func (r *recorder) commit(batch []outcomeUpdate) (err error, own bool) {
	defer func() {
		// A poisoned outcome must not take the server down: its row stays leased and is
		// attempted again when the lease runs out.
		if p := recover(); p != nil {
			err, own = fmt.Errorf("%w: %v", errOutcomePanicked, p), true
		}
	}()
	err = r.st.Update(func(tx store.Tx) error {
		own = false
		for _, u := range batch {
			if err := u.fn(tx); err != nil {
				own = true
				return err
			}
		}
		return nil
	})
	return err, own
}

// stored says whether err is the store failing (worth writing again) rather than a refusal
// that stays: a row no longer in the outbox, or leased anew.
func (r *recorder) stored(err error) bool {
	return !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrLeased) && !errors.Is(err, store.ErrExists) &&
		!errors.Is(err, errOutcomePanicked)
}

// refused keeps u to be written again when the store failed, and drops it otherwise.
func (r *recorder) refused(u outcomeUpdate, err error) {
	if !r.stored(err) {
		u.log.Error("cannot record delivery outcome; the delivery is attempted again when its lease ends", "err", err)
		return
	}
	if u.tries == 0 {
		u.log.Warn("cannot record delivery outcome yet; writing it again until the store takes it", "err", err)
	}
	u.tries++
	r.kept = append(r.kept, u)
}

// taken is called with outcomes the store took.
func (r *recorder) taken(batch []outcomeUpdate) {
	wake := false
	for _, u := range batch {
		if u.tries > 0 {
			u.log.Info("delivery outcome recorded after the store refused it", "tries", u.tries)
		}
		wake = wake || u.soon || u.tries > 0
	}
	if wake && r.written != nil {
		r.written()
	}
}
