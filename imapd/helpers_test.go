package imapd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"golang.org/x/crypto/bcrypt"

	"crewmail/store"
)

const (
	crew  = "crew@lists.example.test"
	other = "other@lists.example.test"
	// The mailboxes of crew and other as LIST names them; their addresses open them too.
	crewBox  = "crew"
	otherBox = "other"
	alice    = "alice@example.test" // on crew
	bob      = "bob@example.test"   // on other
	carol    = "carol@example.test" // on both
)

var passwords = map[string]string{
	alice: "k3v9-xq2a-7mfp-d8wz",
	bob:   "b0b0-b0b0-b0b0-b0b0",
	carol: "c4r0-l1ne-pass-word",
}

// created is when crew was made: its UIDVALIDITY.
var created = time.Date(2026, 1, 10, 9, 0, 0, 0, time.UTC)

// fakeClock is the throttle's clock in tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// logBuffer collects the server's log; sessions may log after a test ends, so not t.Log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type env struct {
	st    *store.Store
	srv   *Server
	addr  string
	clock *fakeClock
	log   *logBuffer
	posts map[string][][]byte // raw of each archived post, by list, in order

	mu     sync.Mutex
	delays []time.Duration // login delays the server asked for
}

type envOptions struct {
	tls          *tls.Config
	insecureAuth bool
	implicitTLS  bool
	pollEvery    time.Duration // of IDLE; 0: the default
	maxConns     [2]int        // Config.MaxConnections and MaxConnectionsPerIP; 0: the defaults
}

// newEnv makes a store with crew (6 posts) and other (2 posts) and serves it on loopback.
func newEnv(t testing.TB) *env {
	return newEnvWith(t, envOptions{insecureAuth: true})
}

func newEnvWith(t testing.TB, o envOptions) *env {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{st: st, clock: &fakeClock{now: time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)}, log: &logBuffer{}, posts: map[string][][]byte{}}
	e.update(t, func(tx store.Tx) error {
		if err := tx.CreateList(store.List{Address: crew, Name: "The crew", Created: created}); err != nil {
			return err
		}
		if err := tx.CreateList(store.List{Address: other, Name: "Others", Created: created.Add(time.Hour)}); err != nil {
			return err
		}
		for list, addrs := range map[string][]string{crew: {alice, carol}, other: {bob, carol}} {
			for _, a := range addrs {
				if _, err := tx.AddMember(list, store.Member{Address: a, Mode: "each", Added: created}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	for addr, pw := range passwords {
		e.setPassword(t, addr, pw)
	}
	for i, raw := range crewPosts {
		e.appendPost(t, crew, raw, time.Date(2026, 3, 1+i, 10, 30, 0, 0, time.UTC))
	}
	for i, raw := range otherPosts {
		e.appendPost(t, other, raw, time.Date(2026, 3, 10+i, 8, 0, 0, 0, time.UTC))
	}

	e.srv = New(st, Config{TLS: o.tls, InsecureAuth: o.insecureAuth, Now: e.clock.Now, MaxConnections: o.maxConns[0], MaxConnectionsPerIP: o.maxConns[1],
		Log: slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	e.srv.dummyCost = bcrypt.MinCost
	if o.pollEvery != 0 {
		e.srv.pollEvery = o.pollEvery
	}
	// Login delays advance the clock instead of sleeping.
	e.srv.sleep = func(ctx context.Context, d time.Duration) error {
		e.mu.Lock()
		e.delays = append(e.delays, d)
		e.mu.Unlock()
		e.clock.Advance(d)
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() {
		if o.implicitTLS {
			served <- e.srv.ServeTLS(ln)
		} else {
			served <- e.srv.Serve(ln)
		}
	}()
	t.Cleanup(func() {
		if err := e.srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return e
}

func (e *env) update(t testing.TB, fn func(tx store.Tx) error) {
	t.Helper()
	if err := e.st.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func (e *env) setPassword(t testing.TB, addr, pw string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	e.update(t, func(tx store.Tx) error {
		return tx.SetAppPassword(addr, store.AppPassword{Hash: hash, Created: created})
	})
}

// appendPost archives raw in list as the server's post path would, and returns its sequence.
func (e *env) appendPost(t testing.TB, list string, raw []byte, received time.Time) uint64 {
	t.Helper()
	var p store.Post
	e.update(t, func(tx store.Tx) error {
		var err error
		p, err = tx.AppendPost(list, store.Post{
			Received:  received,
			Date:      received.Add(-time.Minute),
			MessageID: messageID(raw),
			From:      header(raw, "From"),
			Subject:   header(raw, "Subject"),
		}, raw)
		return err
	})
	e.posts[list] = append(e.posts[list], raw)
	return p.Seq
}

func (e *env) loginDelays() []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Duration(nil), e.delays...)
}

func header(raw []byte, key string) string {
	for _, line := range strings.Split(string(raw), "\r\n") {
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, key) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func messageID(raw []byte) string {
	return strings.Trim(header(raw, "Message-ID"), "<>")
}

// crlf turns a message written with \n into the CRLF form the archive keeps.
func crlf(s string) []byte {
	return []byte(strings.ReplaceAll(strings.TrimPrefix(s, "\n"), "\n", "\r\n"))
}

var crewPosts = [][]byte{
	crlf(`
Return-Path: <alice@example.test>
From: Alice Example <alice@example.test>
To: The crew <crew@lists.example.test>
Subject: Meeting on Friday
Date: Sun, 01 Mar 2026 10:29:00 +0000
Message-ID: <meeting-1@example.test>
List-Id: The crew <crew.lists.example.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 7bit

Shall we meet on Friday at the boathouse?
Bring the charts.

-- 
Alice
`),
	crlf(`
From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.test>
To: crew@lists.example.test
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=
Date: Mon, 02 Mar 2026 10:29:00 +0100
Message-ID: <koeln-2@example.test>
In-Reply-To: <meeting-1@example.test>
References: <meeting-1@example.test>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt-b0undary"

--alt-b0undary
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Freitag passt. Ich bringe K=C3=A4sekuchen mit.
--alt-b0undary
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<p>Freitag passt. Ich bringe <b>K=C3=A4sekuchen</b> mit.</p>
--alt-b0undary--
`),
	crlf(`
From: Carol <carol@example.test>
To: crew@lists.example.test
Cc: Dave <dave@example.test>
Subject: Charts for the weekend
Date: Tue, 03 Mar 2026 10:29:00 +0000
Message-ID: <charts-3@example.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mixed-boundary"

--mixed-boundary
Content-Type: text/plain; charset=us-ascii

The charts are attached.
--mixed-boundary
Content-Type: application/pdf; name="charts.pdf"
Content-Disposition: attachment; filename="charts.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0KZW5kc3RyZWFt
CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK
--mixed-boundary--
`),
	crlf(`
From: Alice Example <alice@example.test>
To: crew@lists.example.test
Subject: Re: Charts for the weekend
Date: Wed, 04 Mar 2026 10:29:00 +0000
Message-ID: <reply-4@example.test>
In-Reply-To: <charts-3@example.test>
References: <charts-3@example.test>
Content-Type: text/plain

Thanks! I will bring a pineapple for the crew.

> The charts are attached.
`),
	crlf(`
From: Dave <dave@example.test>
To: crew@lists.example.test,
 Alice Example <alice@example.test>,
 Carol <carol@example.test>
Subject: A rather long subject line that goes on and on about the
 weather forecast for the regatta
Date: Thu, 05 Mar 2026 10:29:00 +0000
Message-ID: <forecast-5@example.test>
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Wind from the south-west, 12 knots. Temperature 18=B0C.
`),
	crlf(`
From: Carol <carol@example.test>
To: crew@lists.example.test
Subject: Fwd: Marina opening hours
Date: Fri, 06 Mar 2026 10:29:00 +0000
Message-ID: <fwd-6@example.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fwd"

--fwd
Content-Type: text/plain

See below.
--fwd
Content-Type: message/rfc822

From: Marina <office@marina.example>
To: Carol <carol@example.test>
Subject: Opening hours
Date: Thu, 05 Mar 2026 09:00:00 +0000
Message-ID: <hours@marina.example>

We open at 7 on weekends.
--fwd--
`),
}

var otherPosts = [][]byte{
	crlf(`
From: Bob <bob@example.test>
To: other@lists.example.test
Subject: Secret plans of the other list
Date: Tue, 10 Mar 2026 08:00:00 +0000
Message-ID: <secret-1@example.test>

Nobody on crew may read this.
`),
	crlf(`
From: Carol <carol@example.test>
To: other@lists.example.test
Subject: Re: Secret plans of the other list
Date: Wed, 11 Mar 2026 08:00:00 +0000
Message-ID: <secret-2@example.test>

Agreed.
`),
}

// dial connects an imapclient without logging in.
func (e *env) dial(t testing.TB, o *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(e.addr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// login connects and logs in as addr with its password.
func (e *env) login(t testing.TB, addr string) *imapclient.Client {
	t.Helper()
	c := e.dial(t, nil)
	if err := c.Login(addr, passwords[addr]).Wait(); err != nil {
		t.Fatalf("login %s: %v", addr, err)
	}
	return c
}

// wantNo checks that err is an IMAP NO, with code when code is not empty.
func wantNo(t testing.TB, what string, err error, code imap.ResponseCode) {
	t.Helper()
	var ie *imap.Error
	if !errors.As(err, &ie) {
		t.Errorf("%s: %v, want NO [%s]", what, err, code)
		return
	}
	if ie.Type != imap.StatusResponseTypeNo || code != "" && ie.Code != code {
		t.Errorf("%s: %s [%s] %s, want NO [%s]", what, ie.Type, ie.Code, ie.Text, code)
	}
}

func allSeq() imap.SeqSet { return imap.SeqSet{{Start: 1, Stop: 0}} }

// rawConn speaks IMAP by hand, for commands imapclient would not send as they are.
type rawConn struct {
	t   testing.TB
	c   net.Conn
	r   *bufio.Reader
	tag int
}

func (e *env) raw(t testing.TB) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawConn{t: t, c: c, r: bufio.NewReader(c)}
	rc.line() // greeting
	return rc
}

func (rc *rawConn) line() string {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := rc.r.ReadString('\n')
	if err != nil {
		rc.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

// cmd sends one command and returns its untagged responses and its tagged status line (without
// the tag).
func (rc *rawConn) cmd(format string, args ...any) (untagged []string, status string) {
	rc.t.Helper()
	rc.tag++
	tag := fmt.Sprintf("x%d", rc.tag)
	if _, err := fmt.Fprintf(rc.c, "%s %s\r\n", tag, fmt.Sprintf(format, args...)); err != nil {
		rc.t.Fatal(err)
	}
	for {
		l := rc.line()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return untagged, rest
		}
		untagged = append(untagged, l)
	}
}
