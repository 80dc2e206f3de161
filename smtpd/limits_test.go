package smtpd

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"crewmail/lists"
)

// unknownDomain knows one address; every other is refused as unknown (550 5.1.1).
type unknownDomain struct{ fakeDomain }

func (d *unknownDomain) Route(rcpt string) (lists.Target, error) {
	if rcpt == "crew@lists.example.test" {
		return lists.Target{List: rcpt, Kind: lists.KindPost}, nil
	}
	return lists.Target{}, &lists.Refusal{Code: 550, Enhanced: [3]int{5, 1, 1}, Message: "no such list"}
}

// startLimited starts a server whose limits apply on loopback, with a fake clock and sleeper.
func startLimited(t *testing.T, lim Limits, d Domain) (addr string, s *Server, slept *[]time.Duration) {
	t.Helper()
	lim.Loopback = true
	s = New(Config{Hostname: "mx.example.test", MaxMessageBytes: 4 << 20, MaxRecipients: 50, ReadTimeout: time.Minute, WriteTimeout: time.Minute, Limits: lim}, d, slog.New(slog.DiscardHandler))
	var mu sync.Mutex
	var sleeps []time.Duration
	s.Sleep = func(d time.Duration) { mu.Lock(); sleeps = append(sleeps, d); mu.Unlock() }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(time.Second) })
	return ln.Addr().String(), s, &sleeps
}

func smtpCodeOf(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestConnectionsPerIP(t *testing.T) {
	addr, _, _ := startLimited(t, Limits{ConnectionsPerIP: 2}, &fakeDomain{})
	var open []net.Conn
	greet := func() string {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line
	}
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for range 2 {
		if g := greet(); !strings.HasPrefix(g, "220 ") {
			t.Fatalf("greeting %q", g)
		}
	}
	if g := greet(); !strings.HasPrefix(g, "421 4.7.0 ") {
		t.Fatalf("third connection got %q, want 421", g)
	}
	// Closing one makes room again.
	open[0].Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if g := greet(); strings.HasPrefix(g, "220 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed connection was never counted out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMessageRates(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	addr, s, _ := startLimited(t, Limits{MessagesPerMinuteIP: 5, MessagesPerMinuteSender: 3}, &fakeDomain{})
	var mu sync.Mutex
	s.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := dial(t, addr)
	mail := func(from string) error {
		defer c.Reset()
		return c.Mail(from, nil)
	}
	for i := range 3 {
		if err := mail("a@example.test"); err != nil {
			t.Fatalf("message %d from a: %v", i+1, err)
		}
	}
	if err := mail("a@example.test"); smtpCodeOf(err) != 451 || !strings.Contains(err.Error(), "a@example.test") {
		t.Fatalf("4th message from one sender: %v, want 451", err)
	}
	if err := mail("b@example.test"); err != nil {
		t.Fatalf("another sender: %v", err)
	}
	if err := mail("c@example.test"); smtpCodeOf(err) != 451 || !strings.Contains(err.Error(), "your address") {
		t.Fatalf("6th message from one address: %v, want 451", err)
	}
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	if err := mail("a@example.test"); err != nil {
		t.Fatalf("a minute later: %v", err)
	}
}

func TestUnknownRecipientsTarpit(t *testing.T) {
	addr, _, slept := startLimited(t, Limits{UnknownRecipients: 4, UnknownDelay: time.Second}, &unknownDomain{})
	c := dial(t, addr)
	if err := c.Mail("a@example.test", nil); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := c.Rcpt("guess"+string(rune('a'+i))+"@lists.example.test", nil); smtpCodeOf(err) != 550 {
			t.Fatalf("unknown recipient %d: %v", i+1, err)
		}
	}
	if got := *slept; len(got) != 3 || got[0] != time.Second || got[2] != 3*time.Second {
		t.Errorf("delays %v, want 1s, 2s, 3s", got)
	}
	if err := c.Rcpt("crew@lists.example.test", nil); err != nil {
		t.Errorf("a real recipient between guesses: %v", err)
	}
	if err := c.Rcpt("guessd@lists.example.test", nil); smtpCodeOf(err) != 421 {
		t.Fatalf("4th unknown recipient: %v, want 421", err)
	}
	if err := c.Noop(); err == nil {
		t.Error("the session is still open after 421")
	}
}

func TestHeaderTooLarge(t *testing.T) {
	d := &fakeDomain{}
	addr, _, _ := startLimited(t, Limits{MaxHeaderBytes: 16 << 10}, d)
	c := dial(t, addr)
	big := "From: a@example.test\r\nX-Filler: " + strings.Repeat("x", 900) + "\r\n"
	msg := strings.Repeat(big, 20) + "\r\nbody\r\n"
	err := c.SendMail("a@example.test", []string{"crew@lists.example.test"}, strings.NewReader(msg))
	if smtpCodeOf(err) != 552 || !strings.Contains(err.Error(), "header") {
		t.Fatalf("large header: %v, want 552", err)
	}
	if len(d.got) != 0 {
		t.Error("a message with a too large header reached the domain")
	}
}

// TestLoopbackSparedByDefault: without Loopback, local software is not limited.
func TestLoopbackSparedByDefault(t *testing.T) {
	s := New(Config{Hostname: "mx.example.test", MaxMessageBytes: 1 << 20, Limits: Limits{MessagesPerMinuteIP: 1, MessagesPerMinuteSender: 1}}, &fakeDomain{}, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(time.Second) })
	c := dial(t, ln.Addr().String())
	for i := range 3 {
		if err := c.Mail("a@example.test", nil); err != nil {
			t.Fatalf("message %d from loopback: %v", i+1, err)
		}
		c.Reset()
	}
}

// TestLongLineRefusedSessionGoesOn: a line over the limit (but within what the transport
// reads) is refused with 550 5.6.0 after the whole message was read, so the client hears the
// answer and the same session can send the next message.
func TestLongLineRefusedSessionGoesOn(t *testing.T) {
	d := &fakeDomain{}
	addr, _, _ := startLimited(t, Limits{}, d)
	c := dial(t, addr)
	long := "From: a@example.test\r\n\r\n" + strings.Repeat("x", 3000) + "\r\n"
	if err := c.SendMail("a@example.test", []string{"crew@lists.example.test"}, strings.NewReader(long)); smtpCodeOf(err) != 550 || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("long line: %v, want 550", err)
	}
	if err := c.SendMail("a@example.test", []string{"crew@lists.example.test"}, strings.NewReader("From: a@example.test\r\n\r\nshort\r\n")); err != nil {
		t.Fatalf("the next message in the same session: %v", err)
	}
	if len(d.got) != 1 {
		t.Errorf("%d messages reached the domain, want the short one", len(d.got))
	}
}
