package delivery_test

import (
	"context"
	"net"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"crewmail/delivery"
	"crewmail/store"
)

// TestThrottledDestinationIsHeld: an MX that answers 421 4.7.28 (Gmail's "rate limited") is put
// on hold with a back-off of one minute, then two, then four; while it is held its mail waits in
// the outbox without a connection, another domain's mail goes on, and once the hold lifts each
// recipient gets its posts in archive order.
func TestThrottledDestinationIsHeld(t *testing.T) {
	t.Parallel()
	var throttled atomic.Bool
	throttled.Store(true)
	slow := newTestServer(t, serverOptions{rcpt: func(string) error {
		if throttled.Load() {
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 28}, Message: "Our system has detected an unusual rate of unsolicited mail; rate limited"}
		}
		return nil
	}})
	port := portOf(t, slow.Addr)
	var fast *testServer
	func() {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.2", itoa(port)))
		if err != nil {
			t.Skipf("127.0.0.2:%d: %v", port, err)
		}
		ln.Close()
		fast = newTestServer(t, serverOptions{listen: ln.Addr().String()})
	}()
	dns := newDNS(t,
		"slow.test. 300 IN MX 10 mx.slow.test.", "mx.slow.test. 300 IN A 127.0.0.1",
		"fast.test. 300 IN MX 10 mx.fast.test.", "mx.fast.test. 300 IN A 127.0.0.2")
	mx := delivery.NewMX(delivery.NewResolver(dns.Addr), port, "crewmail.test")
	st := openStore(t)
	q, clk := newQueue(t, st, composeMessage, mx, delivery.Config{Workers: 8})

	slowRcpts := []string{"a@slow.test", "b@slow.test", "c@slow.test"}
	for seq := uint64(1); seq <= 4; seq++ {
		for _, to := range slowRcpts {
			enqueue(t, st, store.Delivery{List: "crew", Seq: seq, From: "crew-bounces@crew.test", To: to, Created: t0})
		}
		enqueue(t, st, store.Delivery{List: "crew", Seq: seq, From: "crew-bounces@crew.test", To: "z@fast.test", Created: t0})
	}
	runQueue(t, q)
	// settle waits until nothing is due at the fake clock's time and no attempt is under way.
	settle := func(what string) []store.Delivery {
		now := clk.Now()
		return waitOutbox(t, st, what, func(rows []store.Delivery) bool {
			for _, d := range rows {
				if d.Leased || !d.Due.After(now) {
					return false
				}
			}
			return true
		})
	}
	settle("the first attempts")
	if n := len(fast.Messages()); n != 4 {
		t.Fatalf("fast.test got %d messages while slow.test was held, want 4", n)
	}
	// Five simulated minutes of the hold, in 10-second steps.
	for range 30 {
		clk.Advance(10 * time.Second)
		q.Wake()
		settle("the attempts of this step")
	}
	conns, _ := slow.Conns()
	_, rcpts := slow.Helos()
	t.Logf("throttled destination over 5 minutes: %d connections, %d RCPTs for 12 deliveries to 3 recipients", conns, rcpts)
	// Attempts at 0, 1 and 3 minutes (holds of 1, 2, 4 minutes), each at most one per
	// recipient (max 3 connections at once, one delivery per recipient at a time).
	if conns > 9 || rcpts > 9 {
		t.Errorf("%d connections and %d RCPTs to the held destination in 5 minutes, want at most 9 each", conns, rcpts)
	}
	if n := len(slow.Messages()); n != 0 {
		t.Fatalf("slow.test accepted %d messages while throttling", n)
	}

	throttled.Store(false)
	clk.Advance(10 * time.Minute)
	q.Wake()
	waitOutbox(t, st, "every delivery", empty)
	subject := regexp.MustCompile(`Subject: post (\d+)`)
	last := map[string]string{}
	for _, m := range slow.Messages() {
		seq := subject.FindSubmatch(m.Data)[1]
		to := m.To[0]
		if string(seq) <= last[to] {
			t.Errorf("%s got post %s after post %s", to, seq, last[to])
		}
		last[to] = string(seq)
	}
	if len(slow.Messages()) != 12 {
		t.Errorf("slow.test got %d messages after the hold, want 12", len(slow.Messages()))
	}
}

// routedGate is a gate that says every recipient is at one destination.
type routedGate struct{ *gate }

func (routedGate) Destination(context.Context, string) (string, bool) { return "one", true }

// TestConnectionsPerDestinationAreBounded: however many workers are free, no more than
// max_connections_per_domain attempts go to one destination at once.
func TestConnectionsPerDestinationAreBounded(t *testing.T) {
	t.Parallel()
	g := newGate()
	st := openStore(t)
	q, _ := newQueue(t, st, composeMessage, routedGate{g}, delivery.Config{Workers: 8, MaxConnectionsPerDestination: 2})
	for i := range 6 {
		enqueue(t, st, store.Delivery{List: "crew", Seq: 1, From: "crew-bounces@crew.test", To: "m" + itoa(i) + "@one.test", Created: t0})
	}
	runQueue(t, q)
	// Two start and wait; each one let through makes room for the next.
	g.next(t)
	g.next(t)
	for range 4 {
		g.pass(t)
		g.next(t)
	}
	g.pass(t)
	g.pass(t)
	waitOutbox(t, st, "every delivery", empty)
	if maxSeen, _, _ := g.stats(); maxSeen != 2 {
		t.Errorf("%d sends at once to one destination, want 2", maxSeen)
	}
}

// limited is a transport that says every recipient is at one destination kept to the caps.
type limited struct{ delivery.Transport }

func (limited) Destination(context.Context, string) (string, bool) { return "one", true }

// TestMessagesPerMinuteCap: past the cap, a destination's mail waits in the outbox until the
// minute has passed, its attempts not counted.
func TestMessagesPerMinuteCap(t *testing.T) {
	t.Parallel()
	sink := newTestServer(t, serverOptions{})
	st := openStore(t)
	q, clk := newQueue(t, st, composeMessage, limited{plainSmarthost(sink.Addr)}, delivery.Config{Workers: 2, MessagesPerMinute: 3})
	for i := range 5 {
		enqueue(t, st, store.Delivery{List: "crew", Seq: uint64(i + 1), From: "crew-bounces@crew.test", To: "m" + itoa(i) + "@example.test", Created: t0})
	}
	runQueue(t, q)
	rows := waitOutbox(t, st, "the capped deliveries to wait", func(rows []store.Delivery) bool {
		for _, d := range rows {
			if d.Leased || !d.Due.After(t0) {
				return false // under way, or not yet tried
			}
		}
		return len(rows) == 2
	})
	if n := len(sink.Messages()); n != 3 {
		t.Errorf("%d messages in the first minute, want 3", n)
	}
	for _, d := range rows {
		if d.Attempts != 0 || d.Due.Before(t0.Add(time.Minute)) {
			t.Errorf("waiting row %+v: want no attempt counted, due a minute on", d)
		}
	}
	clk.Advance(time.Minute)
	q.Wake()
	waitOutbox(t, st, "every delivery", empty)
}
