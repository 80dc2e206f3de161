package imapd

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"crewmail/store"
)

// writeCounter counts the writes made on the connections its listener accepts.
type writeCounter struct {
	net.Listener
	writes atomic.Int64
}

func (l *writeCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, &l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestFetchAnswersInBulk: the library flushes after every response line, so a FETCH 1:* of
// a 100,000-message mailbox was 100,000 writes to the connection. The answers of a command
// now go out together when the server waits for the client again: SELECT of 600 posts and
// FETCH 1:* (FLAGS) of them each arrive in one or two writes, whole and in order; and IDLE's
// news still arrives while the server waits (it is not held back for the next command).
func TestFetchAnswersInBulk(t *testing.T) {
	e := newEnv(t)
	const n = 600
	for i := range n - len(crewPosts) {
		e.appendPost(t, crew, bulkPost(fmt.Sprintf("bulk-%d@example.test", i), "bulk"), time.Date(2026, 3, 20, 0, 0, i, 0, time.UTC))
	}
	e.update(t, func(tx store.Tx) error {
		m, err := tx.Member(crew, alice)
		if err != nil {
			return err
		}
		return tx.SetFlags(crew, m.ID, 3, store.FlagSeen|store.FlagFlagged)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counted := &writeCounter{Listener: ln}
	srv := New(e.st, Config{InsecureAuth: true, Now: e.clock.Now})
	srv.dummyCost = bcrypt.MinCost
	srv.pollEvery = time.Hour // news comes through Notify only
	served := make(chan error, 1)
	go func() { served <- srv.Serve(counted) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	rc := (&env{addr: ln.Addr().String()}).raw(t)
	if _, st := rc.cmd("LOGIN %s %s", alice, passwords[alice]); !strings.HasPrefix(st, "OK") {
		t.Fatalf("LOGIN: %s", st)
	}

	before := counted.writes.Load()
	untagged, st := rc.cmd("SELECT crew")
	if !strings.HasPrefix(st, "OK") || !contains(untagged, fmt.Sprintf("* %d EXISTS", n)) || !contains(untagged, "* OK [UNSEEN 1] First unseen message") {
		t.Fatalf("SELECT: %s %q", st, untagged)
	}
	if w := counted.writes.Load() - before; w > 2 {
		t.Errorf("SELECT answered in %d writes", w)
	}

	before = counted.writes.Load()
	untagged, st = rc.cmd("FETCH 1:* (FLAGS)")
	if !strings.HasPrefix(st, "OK") || len(untagged) != n {
		t.Fatalf("FETCH 1:* (FLAGS): %s, %d answers", st, len(untagged))
	}
	for i, u := range untagged {
		want := fmt.Sprintf("* %d FETCH (UID %d FLAGS ())", i+1, i+1)
		if i == 2 {
			want = "* 3 FETCH (UID 3 FLAGS (\\Seen \\Flagged))"
		}
		if u != want {
			t.Fatalf("answer %d: %q, want %q", i+1, u, want)
		}
	}
	if w := counted.writes.Load() - before; w > 2 {
		t.Errorf("FETCH 1:* (FLAGS) of %d messages answered in %d writes", n, w)
	}

	if _, err := fmt.Fprintf(rc.c, "i1 IDLE\r\n"); err != nil {
		t.Fatal(err)
	}
	if l := rc.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	e.appendPost(t, crew, bulkPost("news@example.test", "news"), time.Date(2026, 3, 21, 0, 0, 0, 0, time.UTC))
	srv.Notify()
	if l := rc.line(); l != fmt.Sprintf("* %d EXISTS", n+1) {
		t.Fatalf("news during IDLE: %q", l)
	}
	if _, err := fmt.Fprintf(rc.c, "DONE\r\n"); err != nil {
		t.Fatal(err)
	}
	if l := rc.line(); !strings.HasPrefix(l, "i1 OK") {
		t.Fatalf("end of IDLE: %q", l)
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

func bulkPost(msgid, subject string) []byte {
	return crlf(fmt.Sprintf("From: Alice <alice@example.test>\nTo: %s\nSubject: %s\nMessage-ID: <%s>\n\nA post.\n", crew, subject, msgid))
}
