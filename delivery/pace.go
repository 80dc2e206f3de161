package delivery

import (
	"context"
	"sync"
	"time"

	"crewmail/internal/metrics"
)

// Router is implemented by transports that know where a recipient's mail goes: the
// destination (an MX host set, a smarthost) that deliveries are paced by. Every destination is
// held when it asks us to slow down; a limited one (a domain's MX hosts, not the operator's own
// smarthost) is also kept to the connection and rate caps. key "" means no pacing.
type Router interface {
	Destination(ctx context.Context, to string) (key string, limited bool)
}

// pacer keeps each destination to what it asks for: no more than a few connections at once,
// no more than so many messages a minute, and nothing at all while it is held after telling
// us to slow down (421, 4.7.28, "rate", "too many", a refused connection).
type pacer struct {
	maxConns  int // connections at once per destination
	perMinute int // messages a minute per destination; 0: no cap

	mu    sync.Mutex
	dests map[string]*destination
}

type destination struct {
	heldUntil time.Time
	holds     int           // holds in a row, for the back-off
	slots     chan struct{} // one value per connection in use
	sent      []time.Time   // when the last messages (at most perMinute) were sent
}

func (p *pacer) get(key string) *destination {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dests == nil {
		p.dests = map[string]*destination{}
	}
	d := p.dests[key]
	if d == nil {
		d = &destination{slots: make(chan struct{}, max(p.maxConns, 1))}
		p.dests[key] = d
	}
	return d
}

// wait returns when key may be sent to now; until is non-zero when it may not (held, or its
// rate cap reached) and the delivery must wait in the outbox until then. Otherwise release
// must be called when the attempt is over.
func (p *pacer) admit(ctx context.Context, key string, limited bool, now time.Time) (until time.Time, release func(), err error) {
	d := p.get(key)
	if u := p.blocked(d, limited, now); !u.IsZero() {
		return u, nil, nil
	}
	if !limited {
		return time.Time{}, func() {}, nil
	}
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return time.Time{}, nil, ctx.Err()
	}
	// A hold may have begun while this attempt waited for a connection.
	if u := p.blocked(d, limited, now); !u.IsZero() {
		<-d.slots
		return u, nil, nil
	}
	p.mu.Lock()
	if p.perMinute > 0 {
		d.sent = append(d.sent, now)
		if len(d.sent) > p.perMinute {
			d.sent = d.sent[len(d.sent)-p.perMinute:]
		}
	}
	p.mu.Unlock()
	return time.Time{}, func() { <-d.slots }, nil
}

// blocked returns until when d takes nothing, or zero.
func (p *pacer) blocked(d *destination, limited bool, now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Before(d.heldUntil) {
		return d.heldUntil
	}
	if limited && p.perMinute > 0 && len(d.sent) >= p.perMinute {
		if next := d.sent[len(d.sent)-p.perMinute].Add(time.Minute); now.Before(next) {
			return next
		}
	}
	return time.Time{}
}

// hold puts key on hold after it told us to slow down: one minute the first time, doubling
// with each hold in a row (Backoff). It returns when the hold ends.
func (p *pacer) hold(key string, now time.Time, jitter float64) time.Time {
	d := p.get(key)
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Before(d.heldUntil) {
		return d.heldUntil // held already by a parallel attempt
	}
	d.holds++
	d.heldUntil = now.Add(max(Backoff(d.holds, jitter), time.Minute))
	p.count(now)
	return d.heldUntil
}

// count sets the held-destinations gauge. p.mu is held.
func (p *pacer) count(now time.Time) {
	n := 0
	for _, d := range p.dests {
		if now.Before(d.heldUntil) {
			n++
		}
	}
	metrics.DestinationsHeld.Set(float64(n))
}

// ok records that key took a message: the next hold starts from one minute again.
func (p *pacer) ok(key string, now time.Time) {
	d := p.get(key)
	p.mu.Lock()
	d.holds = 0
	p.count(now)
	p.mu.Unlock()
}

// Held is a destination on hold, for the operator.
type Held struct {
	Destination string
	Until       time.Time
	Holds       int
}

// Held lists the destinations on hold at now.
func (q *Queue) Held() []Held {
	now := q.Now()
	q.pace.mu.Lock()
	defer q.pace.mu.Unlock()
	var out []Held
	for k, d := range q.pace.dests {
		if now.Before(d.heldUntil) {
			out = append(out, Held{Destination: k, Until: d.heldUntil, Holds: d.holds})
		}
	}
	return out
}

// ReleaseHolds ends every destination's hold at once (the operator's queue retry): their mail
// goes at the next attempt, and a destination still throttling is held again from one minute.
func (q *Queue) ReleaseHolds() {
	now := q.Now()
	q.pace.mu.Lock()
	defer q.pace.mu.Unlock()
	for _, d := range q.pace.dests {
		d.heldUntil, d.holds = time.Time{}, 0
	}
	q.pace.count(now)
}
