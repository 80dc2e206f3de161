package delivery

import (
	"sync"

	"crewmail/store"
)

// recorder writes the outcomes of attempts in batches: each attempt hands over the store
// updates that record it and its worker goes on to the next delivery, and whatever outcomes
// are waiting when the previous commit is done are written in one transaction, several role
// calls in one Update. A worker that waited for its own commit spent most of its time waiting
// for the disk: the deliveries a second were the workers ÷ the time of an fsync.
//
// Until its outcome is committed, a row stays leased: a crash before then sends it again when
// the lease runs out, as it always could between the send and the record.
type recorder struct {
	st store.Backend

	mu      sync.Mutex
	pending []outcomeUpdate
	wake    chan struct{} // one slot: outcomes are pending
	stop    chan struct{} // closed: write what is pending and return
	done    chan struct{} // closed when run returns
}

// outcomeUpdate is what records one attempt, and the log of that delivery.
type outcomeUpdate struct {
	fn  func(store.Tx) error
	log attemptLog
}

// maxRecordBatch bounds the outcomes written in one transaction.
const maxRecordBatch = 512

func newRecorder(st store.Backend) *recorder {
	r := &recorder{st: st, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
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
	for {
		stopping := false
		select {
		case <-r.wake:
		case <-r.stop:
			stopping = true
		}
		for {
			r.mu.Lock()
			n := min(len(r.pending), maxRecordBatch)
			batch := r.pending[:n:n]
			r.pending = r.pending[n:]
			if len(r.pending) == 0 {
				r.pending = nil
			}
			r.mu.Unlock()
			if n == 0 {
				break
			}
			r.write(batch)
		}
		if stopping {
			return
		}
	}
}

// write commits batch in one transaction. Should that fail, each outcome is written on its own,
// so that one that cannot be written (its bounce accounting fails, say) holds up only itself.
func (r *recorder) write(batch []outcomeUpdate) {
	defer func() {
		// A poisoned outcome must not take the server down: its row stays leased and is
		// retried when the lease runs out.
		if p := recover(); p != nil {
			batch[0].log.Error("recording delivery outcomes panicked", "panic", p)
		}
	}()
	err := r.st.Update(func(tx store.Tx) error {
		for _, u := range batch {
			if err := u.fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		return
	}
	for _, u := range batch {
		if len(batch) == 1 {
			u.log.Error("cannot record delivery outcome", "err", err)
			return
		}
		if err := r.st.Update(u.fn); err != nil {
			// The row stays leased; it is retried when the lease runs out or at the next start.
			u.log.Error("cannot record delivery outcome", "err", err)
		}
	}
}
