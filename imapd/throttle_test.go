package imapd

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func TestThrottleDelays(t *testing.T) {
	th := newThrottle()
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{
		{0, 0}, {4, 0},
		{5, time.Second}, {6, 2 * time.Second}, {7, 4 * time.Second}, {8, 8 * time.Second},
		{9, 16 * time.Second}, {10, 30 * time.Second}, {19, 30 * time.Second}, {1000, 30 * time.Second},
	} {
		if got := th.delay(tc.failures); got != tc.want {
			t.Errorf("delay after %d failures: %v, want %v", tc.failures, got, tc.want)
		}
	}
}

func TestThrottleCountsPerAccountAcrossAddresses(t *testing.T) {
	th := newThrottle()
	now := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	// An attacker spreads guesses at one account over many addresses.
	for i := range 20 {
		ip := fmt.Sprintf("192.0.2.%d", i)
		if _, refused := th.begin(ip, "victim@example.test", now); refused {
			t.Fatalf("attempt %d refused", i+1)
		}
		th.end(ip, "victim@example.test", now, true)
	}
	// Each address that guessed is now judged by the account's 20 failures.
	if _, refused := th.begin("192.0.2.3", "victim@example.test", now); !refused {
		t.Error("a second guess from an address that failed, after 20 at the account, was let through")
	}
	// An address with no failure on the account (the owner) is only slowed down a little.
	wait, refused := th.begin("198.51.100.7", "victim@example.test", now)
	if refused || wait != th.base {
		t.Errorf("a fresh address on the account guessed at: wait %v, refused %v; want %v, not refused", wait, refused, th.base)
	}
	th.end("198.51.100.7", "victim@example.test", now, false)
	// Other accounts are not affected from an address with no failures.
	if wait, refused := th.begin("198.51.100.7", "other@example.test", now); refused || wait != 0 {
		t.Errorf("another account: wait %v, refused %v", wait, refused)
	}
	th.end("198.51.100.7", "other@example.test", now, false)
	// The window passes: the account is open again, without delay.
	later := now.Add(15 * time.Minute)
	if wait, refused := th.begin("192.0.2.3", "victim@example.test", later); refused || wait != 0 {
		t.Errorf("after the window: wait %v, refused %v", wait, refused)
	}
	th.end("192.0.2.3", "victim@example.test", later, false)
	if len(th.accounts) != 0 || len(th.ips) != 19 || len(th.pairs) != 19 {
		t.Errorf("tables hold %d accounts, %d addresses and %d pairs, want 0 and the 19 that failed and were not seen since, twice", len(th.accounts), len(th.ips), len(th.pairs))
	}
}

// TestThrottleSuccessForgetsOwnMistakes: the owner who mistyped and then got it right is not
// judged by the account's failures when someone else guesses at it afterwards.
func TestThrottleSuccessForgetsOwnMistakes(t *testing.T) {
	th := newThrottle()
	now := time.Now()
	const owner, acct = "198.51.100.7", "victim@example.test"
	for _, failed := range []bool{true, false} { // a typo, then the right password
		if _, refused := th.begin(owner, acct, now); refused {
			t.Fatal("refused")
		}
		th.end(owner, acct, now, failed)
	}
	for i := range 30 {
		ip := fmt.Sprintf("192.0.2.%d", i)
		if _, refused := th.begin(ip, acct, now); !refused {
			th.end(ip, acct, now, true)
		}
	}
	if wait, refused := th.begin(owner, acct, now); refused || wait > th.base {
		t.Errorf("the owner after someone else's 30 guesses: wait %v, refused %v", wait, refused)
	}
	th.end(owner, acct, now, false)
	// A typo during the attack puts her among the guessers until the window passes.
	th.begin(owner, acct, now)
	th.end(owner, acct, now, true)
	if _, refused := th.begin(owner, acct, now); !refused {
		t.Error("an address that failed during an attack is not judged by the account's failures")
	}
}

// TestThrottleParallelGuessesCount: attempts under way count, so opening many connections at
// once gets no more guesses in.
func TestThrottleParallelGuessesCount(t *testing.T) {
	th := newThrottle()
	now := time.Now()
	var waits []time.Duration
	let := 0
	for range 30 {
		wait, refused := th.begin("192.0.2.1", "victim@example.test", now)
		if refused {
			continue
		}
		let++
		waits = append(waits, wait)
	}
	if let != 20 || waits[4] != 0 || waits[5] != time.Second || waits[6] != 2*time.Second {
		t.Errorf("%d parallel attempts let through, waits %v", let, waits)
	}
}

func TestThrottleTablesStayBounded(t *testing.T) {
	th := newThrottle()
	th.limit = 100
	now := time.Now()
	for i := range 5000 {
		ip, acct := fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), fmt.Sprintf("guess%d@example.test", i)
		if _, refused := th.begin(ip, acct, now); refused {
			t.Fatal("refused")
		}
		th.end(ip, acct, now, true)
	}
	if len(th.ips) > th.limit || len(th.accounts) > th.limit || len(th.pairs) > th.limit {
		t.Errorf("tables grew to %d addresses, %d accounts and %d pairs, limit %d", len(th.ips), len(th.accounts), len(th.pairs), th.limit)
	}
}

func TestIPKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:1234":                 "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:993":     "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:993":     "2001:db8:1:2::/64",
		"[::ffff:192.0.2.7]:143":         "192.0.2.7",
		"[2001:db8:1:3:3:4:5:6]:1":       "2001:db8:1:3::/64",
		"not an address":                 "not an address",
		"[fe80::1%eth0]:143":             "fe80::/64",
		"127.0.0.1:143":                  "127.0.0.1",
		"[2001:db8:1:2:3:4:5:6%eth0]:99": "2001:db8:1:2::/64",
	} {
		var a net.Addr = fakeAddr(in)
		if tcp, err := net.ResolveTCPAddr("tcp", in); err == nil {
			a = tcp
		}
		if got := ipKey(a); got != want {
			t.Errorf("ipKey(%s) = %s, want %s", in, got, want)
		}
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }

// TestLoginThrottling: repeated bad passwords are delayed, then refused even with the right
// password; once the window has passed (on the server's clock) the owner gets in.
func TestLoginThrottling(t *testing.T) {
	e := newEnv(t)
	attempt := func(user, pw string) error {
		t.Helper()
		c := e.dial(t, nil)
		defer c.Close()
		return c.Login(user, pw).Wait()
	}
	for range 5 {
		wantNo(t, "bad password", attempt(alice, "guess"), imap.ResponseCodeAuthenticationFailed)
	}
	if d := e.loginDelays(); len(d) != 0 {
		t.Fatalf("the first 5 failures were delayed: %v", d)
	}
	// The owner, after five failures: in, after a delay.
	if err := attempt(alice, passwords[alice]); err != nil {
		t.Fatalf("the right password after 5 failures: %v", err)
	}
	if d := e.loginDelays(); !slices.Equal(d, []time.Duration{time.Second}) {
		t.Errorf("delays: %v, want [1s]", d)
	}
	for range 15 {
		wantNo(t, "bad password", attempt(alice, "guess"), imap.ResponseCodeAuthenticationFailed)
	}
	want := []time.Duration{1, 1, 2, 4, 8, 16, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30}
	for i := range want {
		want[i] *= time.Second
	}
	if d := e.loginDelays(); !slices.Equal(d, want) {
		t.Errorf("delays: %v, want %v", d, want)
	}
	// 20 failures: refused outright, right password or not, for this address and account.
	for _, pw := range []string{"guess", passwords[alice]} {
		err := attempt(alice, pw)
		wantNo(t, "after 20 failures", err, imap.ResponseCodeAuthenticationFailed)
		if err == nil || !strings.Contains(err.Error(), "Too many failed logins") {
			t.Errorf("after 20 failures: %v", err)
		}
	}
	wantNo(t, "another account from the same address", attempt(carol, passwords[carol]), imap.ResponseCodeAuthenticationFailed)
	if d := e.loginDelays(); len(d) != len(want) {
		t.Errorf("refused attempts were delayed: %v", d[len(want):])
	}
	// The delays moved the clock on by some minutes; the window is 15 from the first failure.
	e.clock.Advance(15 * time.Minute)
	if err := attempt(alice, passwords[alice]); err != nil {
		t.Errorf("the right password after the window: %v", err)
	}
	if d := e.loginDelays(); len(d) != len(want) {
		t.Errorf("the login after the window was delayed: %v", d[len(want):])
	}
}

// dialFrom connects an imapclient to the server from the loopback address local (Linux routes
// all of 127.0.0.0/8 to the loopback interface).
func (e *env) dialFrom(t testing.TB, local string) *imapclient.Client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	conn, err := d.Dial("tcp", e.addr)
	if err != nil {
		t.Skipf("cannot connect from %s: %v", local, err)
	}
	c := imapclient.New(conn, nil)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestGuessesElsewhereDoNotLockOwnerOut: someone at another address fails 100 logins at
// alice's account; alice, from her own address, still gets in with her password, while the
// guesser is refused even with the right one.
func TestGuessesElsewhereDoNotLockOwnerOut(t *testing.T) {
	e := newEnv(t)
	for i := range 100 {
		c := e.dialFrom(t, "127.0.0.2")
		err := c.Login(alice, fmt.Sprintf("guess-%d", i)).Wait()
		wantNo(t, "a guess", err, imap.ResponseCodeAuthenticationFailed)
		c.Close()
	}
	c := e.dialFrom(t, "127.0.0.1")
	if err := c.Login(alice, passwords[alice]).Wait(); err != nil {
		t.Fatalf("alice from her own address after 100 guesses elsewhere: %v", err)
	}
	if _, err := c.Select(crew, nil).Wait(); err != nil {
		t.Errorf("select after login: %v", err)
	}
	err := e.dialFrom(t, "127.0.0.2").Login(alice, passwords[alice]).Wait()
	if err == nil || !strings.Contains(err.Error(), "Too many failed logins") {
		t.Errorf("the guessing address with the right password: %v, want refused", err)
	}
}
