package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"crewmail/store"
)

// batchStore counts, in each committed update, the outbox rows recorded as delivered. The
// first update that records any waits until the others' outcomes are queued behind it.
type batchStore struct {
	store.Backend
	gate func(first int)

	mu      sync.Mutex
	batches []int
	gated   bool
}

type deliveredCounter struct {
	store.Tx
	n *int
}

func (t deliveredCounter) Delivered(d store.Delivery) error {
	*t.n++
	return t.Tx.Delivered(d)
}

func (s *batchStore) Update(fn func(store.Tx) error) error {
	var n int
	err := s.Backend.Update(func(tx store.Tx) error {
		n = 0
		return fn(deliveredCounter{Tx: tx, n: &n})
	})
	if err != nil || n == 0 {
		return err
	}
	s.mu.Lock()
	s.batches = append(s.batches, n)
	first := !s.gated
	s.gated = true
	s.mu.Unlock()
	if first && n < 8 {
		s.gate(n)
	}
	return nil
}

type okTransport struct{}

func (okTransport) Send(context.Context, string, string, []byte) error { return nil }

// TestOutcomesRecordedInOneCommit: the outcomes of attempts that end while earlier ones are
// being written are recorded together, in one transaction, and every one of them is on disk.
func TestOutcomesRecordedInOneCommit(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var q *Queue
	bs := &batchStore{Backend: st}
	bs.gate = func(first int) {
		// Hold the first commit of outcomes until the other attempts have handed theirs
		// over.
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			q.rec.mu.Lock()
			n := len(q.rec.pending)
			q.rec.mu.Unlock()
			if n == 8-first {
				return
			}
		}
	}
	err = st.Update(func(tx store.Tx) error {
		for i := range 8 {
			if _, err := tx.Enqueue(store.Delivery{List: "crew@x.test", Message: []byte("Subject: x\r\n\r\nx\r\n"),
				To: fmt.Sprintf("m%d@example.test", i), Created: time.Now()}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	composer := composerOf(func(d store.Delivery) ([]byte, error) { return d.Message, nil })
	q = New(bs, composer, okTransport{}, Config{Workers: 8}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		var n int
		_ = st.View(func(tx store.Tx) error { n, err = tx.OutboxSize(); return err })
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries still in the outbox", n)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	sum := 0
	for _, n := range bs.batches {
		sum += n
	}
	if len(bs.batches) > 2 || sum != 8 {
		t.Errorf("outcomes recorded in commits of %v, want all 8 in at most two: the first ones, and the others together", bs.batches)
	}
}

type composerOf func(store.Delivery) ([]byte, error)

func (f composerOf) Compose(d store.Delivery) ([]byte, error) { return f(d) }
