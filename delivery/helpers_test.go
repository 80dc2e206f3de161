package delivery_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"crewmail/delivery"
	"crewmail/internal/mailtest"
	"crewmail/store"
)

// t0 is the fake clock's start: after 1970 (outbox keys are Unix nanoseconds) and far from
// the real clock, so a test that reads the real clock by mistake is noticed.
var t0 = time.Date(2031, 3, 14, 9, 26, 53, 0, time.UTC)

// clock is a fake Queue.Now that moves only when the test says so.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(at time.Time) *clock { return &clock{now: at} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// composerFunc adapts a function to delivery.Composer.
type composerFunc func(store.Delivery) ([]byte, error)

func (f composerFunc) Compose(d store.Delivery) ([]byte, error) { return f(d) }

// messageFor is the message a delivery carries in these tests: distinct per delivery, CRLF
// throughout, with a line that starts with a dot (SMTP must stuff and unstuff it).
func messageFor(d store.Delivery) []byte {
	return fmt.Appendf(nil, "Message-ID: <%d.%s@crew.test>\r\nFrom: list@crew.test\r\nTo: %s\r\nSubject: post %d\r\n\r\nHello %s, this is delivery %d.\r\n.a line that starts with a dot\r\n",
		d.ID, d.List, d.To, d.Seq, d.To, d.ID)
}

// composeMessage is the Composer most tests use.
var composeMessage = composerFunc(func(d store.Delivery) ([]byte, error) { return messageFor(d), nil })

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openStore opens a store in a fresh folder; it is closed when the test ends (after the queue,
// whose cleanup is registered later and so runs first).
func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return st
}

func enqueue(t testing.TB, st *store.Store, ds ...store.Delivery) []store.Delivery {
	t.Helper()
	var out []store.Delivery
	err := st.Update(func(tx store.Tx) error {
		out = out[:0]
		for _, d := range ds {
			d, err := tx.Enqueue(d)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return out
}

func outbox(t testing.TB, st *store.Store) []store.Delivery {
	t.Helper()
	var rows []store.Delivery
	err := st.View(func(tx store.Tx) error {
		return tx.Outbox(func(d store.Delivery) error {
			rows = append(rows, d)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return rows
}

func failures(t testing.TB, st *store.Store) []store.Failure {
	t.Helper()
	var rows []store.Failure
	err := st.View(func(tx store.Tx) error {
		return tx.Failures(func(f store.Failure) error {
			rows = append(rows, f)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("read failures: %v", err)
	}
	return rows
}

// waitFor polls cond until it holds. The deadline is generous: only a broken build reaches it.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitOutbox waits until the outbox satisfies cond and returns its rows.
func waitOutbox(t testing.TB, st *store.Store, what string, cond func([]store.Delivery) bool) []store.Delivery {
	t.Helper()
	var rows []store.Delivery
	waitFor(t, what, func() bool {
		rows = outbox(t, st)
		return cond(rows)
	})
	return rows
}

// settled reports whether no row is leased, i.e. no attempt is under way or unrecorded.
func settled(rows []store.Delivery) bool {
	for _, d := range rows {
		if d.Leased {
			return false
		}
	}
	return true
}

func empty(rows []store.Delivery) bool { return len(rows) == 0 }

// newQueue returns a queue on a fake clock starting at t0 with jitter fixed at 0.5 (so the
// retry delay is exactly the schedule's nominal value).
func newQueue(t testing.TB, st *store.Store, c delivery.Composer, tr delivery.Transport, cfg delivery.Config) (*delivery.Queue, *clock) {
	t.Helper()
	q := delivery.New(st, c, tr, cfg, testLogger(t))
	clk := newClock(t0)
	q.Now = clk.Now
	q.Jitter = func() float64 { return 0.5 }
	return q, clk
}

// runQueue runs q in a goroutine. stop cancels it and waits for Run to return; it also runs
// when the test ends.
func runQueue(t testing.TB, q *delivery.Queue) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Errorf("Run did not return after its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// fatalTB turns a Fatal into the end of the calling goroutine, keeping the message, so that a
// constructor that fails the test can be retried.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// newDNS is mailtest.NewDNS, retried while its TCP listener collides with a port already in use:
// NewDNS takes a free UDP port and then binds TCP to the same number, which another test's
// listener or outgoing connection may hold when many run in parallel.
func newDNS(t testing.TB, records ...string) *mailtest.DNS {
	t.Helper()
	for try := 1; ; try++ {
		ftb := &fatalTB{TB: t}
		var d *mailtest.DNS
		done := make(chan struct{})
		go func() {
			defer close(done)
			d = mailtest.NewDNS(ftb, records...)
		}()
		<-done
		if d != nil {
			return d
		}
		if try == 20 || !strings.Contains(ftb.msg, "address already in use") {
			t.Fatal(ftb.msg)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func portOf(t testing.TB, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// gate is a Transport whose sends wait until the test lets each one through; it keeps count of
// how many run at once.
type gate struct {
	started chan string   // the recipient of every send, as it starts
	release chan struct{} // one value lets one waiting send succeed

	mu      sync.Mutex
	active  int
	maxSeen int
	sent    []string
	closed  bool
}

func newGate() *gate {
	return &gate{started: make(chan string, 100), release: make(chan struct{})}
}

func (g *gate) Send(ctx context.Context, _, to string, _ []byte) error {
	g.mu.Lock()
	g.active++
	g.maxSeen = max(g.maxSeen, g.active)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.active--
		g.mu.Unlock()
	}()
	g.started <- to
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.mu.Lock()
	g.sent = append(g.sent, to)
	g.mu.Unlock()
	return nil
}

// Close records that the queue closed its transport.
func (g *gate) Close() error {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	return nil
}

// next returns the recipient of the next send to start.
func (g *gate) next(t testing.TB) string {
	t.Helper()
	select {
	case to := <-g.started:
		return to
	case <-time.After(60 * time.Second):
		t.Fatal("timed out waiting for a send to start")
		return ""
	}
}

// pass lets one waiting send through.
func (g *gate) pass(t testing.TB) {
	t.Helper()
	select {
	case g.release <- struct{}{}:
	case <-time.After(60 * time.Second):
		t.Fatal("timed out waiting for a send to let through")
	}
}

func (g *gate) stats() (maxSeen int, sent []string, closed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.maxSeen, append([]string(nil), g.sent...), g.closed
}
