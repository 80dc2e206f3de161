package imapd

import (
	"net"
	"sync"
	"time"
)

// Failed logins are counted per remote address, per account, and per account and address.
// Within a window that starts at the first failure, the first few failures cost nothing; after
// that every attempt (right password or not) waits a delay that doubles with each failure, and
// past a ceiling attempts are refused outright until the window ends.
//
// An address is judged by its own failures, and by the account's (from everywhere) only once it
// has itself failed on that account: guesses spread over many addresses are slowed down and
// refused, but an address with no failure on the account (the owner at home, while someone
// elsewhere guesses) gets at most a short delay and is never refused because of others.
type throttle struct {
	window time.Duration // how long failures are remembered, from the first one
	free   int           // failures before attempts are delayed
	refuse int           // failures (and attempts under way) at which attempts are refused
	base   time.Duration // first delay; doubles per further failure
	max    time.Duration // longest delay
	limit  int           // most keys kept per table

	mu       sync.Mutex
	ips      map[string]*tally
	accounts map[string]*tally
	pairs    map[string]*tally // account and address: pairKey
}

type tally struct {
	first    time.Time // of the first failure in the window; zero: no failure yet
	failures int
	pending  int // attempts being checked now; they count, so parallel guesses gain nothing
}

func newThrottle() *throttle {
	return &throttle{
		window:   15 * time.Minute,
		free:     5,
		refuse:   20,
		base:     time.Second,
		max:      30 * time.Second,
		limit:    10000,
		ips:      make(map[string]*tally),
		accounts: make(map[string]*tally),
		pairs:    make(map[string]*tally),
	}
}

func pairKey(ip, account string) string { return account + "\x00" + ip }

// delay is how long an attempt waits when n failed or ongoing attempts came before it.
func (t *throttle) delay(n int) time.Duration {
	if n < t.free {
		return 0
	}
	d := t.base
	for i := t.free; i < n && d < t.max; i++ {
		d *= 2
	}
	return min(d, t.max)
}

// begin registers an attempt by ip on account. It returns how long the attempt must wait
// before its password is checked, or refused = true when it must not be checked at all. Every
// begin that is not refused must be followed by one end.
func (t *throttle) begin(ip, account string, now time.Time) (wait time.Duration, refused bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pk := pairKey(ip, account)
	a, b, p := t.get(t.ips, ip, now), t.get(t.accounts, account, now), t.get(t.pairs, pk, now)
	n := a.failures + a.pending
	accountN := b.failures + b.pending
	if p.failures > 0 {
		// This address has guessed wrong at this account: the account's count applies in full.
		n = max(n, accountN)
	} else {
		// Someone else's failures only slow this address down a little.
		wait = min(t.delay(accountN), t.base)
	}
	if n >= t.refuse {
		t.drop(t.ips, ip, a)
		t.drop(t.accounts, account, b)
		t.drop(t.pairs, pk, p)
		return 0, true
	}
	a.pending++
	b.pending++
	p.pending++
	return max(wait, t.delay(n)), false
}

// end records the outcome of an attempt begin let through. A success forgets the failures of
// this address on this account (the owner mistyped, then got it right), not those of the
// address or the account.
func (t *throttle) end(ip, account string, now time.Time, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range []struct {
		m     map[string]*tally
		key   string
		clear bool // on success
	}{{t.ips, ip, false}, {t.accounts, account, false}, {t.pairs, pairKey(ip, account), true}} {
		e := t.get(k.m, k.key, now)
		if e.pending > 0 {
			e.pending--
		}
		switch {
		case failed:
			if e.failures == 0 {
				e.first = now
			}
			e.failures++
		case k.clear:
			e.failures, e.first = 0, time.Time{}
		}
		t.drop(k.m, k.key, e)
	}
}

// get returns key's tally, forgetting failures older than the window, and making room for a
// new key when the table is full.
func (t *throttle) get(m map[string]*tally, key string, now time.Time) *tally {
	e := m[key]
	if e != nil {
		if e.failures > 0 && now.Sub(e.first) >= t.window {
			e.failures, e.first = 0, time.Time{}
		}
		return e
	}
	if len(m) >= t.limit {
		for k, old := range m {
			if old.failures > 0 && now.Sub(old.first) >= t.window {
				delete(m, k)
			}
		}
		// Still full: forget some idle key (map order is random), so memory stays bounded
		// whatever an attacker sends.
		for k, old := range m {
			if len(m) < t.limit {
				break
			}
			if old.pending == 0 {
				delete(m, k)
			}
		}
	}
	e = &tally{}
	m[key] = e
	return e
}

// drop forgets a tally that holds nothing.
func (t *throttle) drop(m map[string]*tally, key string, e *tally) {
	if e.failures == 0 && e.pending == 0 {
		delete(m, key)
	}
}

// ipKey is what failures of a remote address are counted under: the IPv4 address, or the /64
// of an IPv6 address (one host commonly has a whole /64).
func ipKey(a net.Addr) string {
	var ip net.IP
	switch a := a.(type) {
	case *net.TCPAddr:
		ip = a.IP
	default:
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			return a.String()
		}
		ip = net.ParseIP(host)
		if ip == nil {
			return host
		}
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return (&net.IPNet{IP: ip.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
}
