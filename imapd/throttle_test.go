package imapd

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
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
	if _, refused := th.begin("198.51.100.7", "victim@example.test", now); !refused {
		t.Error("the 21st guess at an account, from a fresh address, was let through")
	}
	// Other accounts are not affected from an address with no failures.
	if wait, refused := th.begin("198.51.100.7", "other@example.test", now); refused || wait != 0 {
		t.Errorf("another account: wait %v, refused %v", wait, refused)
	}
	th.end("198.51.100.7", "other@example.test", now, false)
	// The window passes: the account is open again, without delay.
	later := now.Add(15 * time.Minute)
	if wait, refused := th.begin("198.51.100.7", "victim@example.test", later); refused || wait != 0 {
		t.Errorf("after the window: wait %v, refused %v", wait, refused)
	}
	th.end("198.51.100.7", "victim@example.test", later, false)
	if len(th.accounts) != 0 || len(th.ips) != 20 {
		t.Errorf("tables hold %d accounts and %d addresses, want 0 and the 20 that failed", len(th.accounts), len(th.ips))
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
	if len(th.ips) > th.limit || len(th.accounts) > th.limit {
		t.Errorf("tables grew to %d addresses and %d accounts, limit %d", len(th.ips), len(th.accounts), th.limit)
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
