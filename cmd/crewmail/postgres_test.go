package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/jackc/pgx/v5"

	"crewmail/digest"
	"crewmail/internal/mailtest"
	"crewmail/store"
	"crewmail/store/postgres/pgtest"
)

// postgresConfig is testConfig with [store] on the PostgreSQL database at dsn.
func postgresConfig(t *testing.T, dir, smarthost, dsn string) string {
	t.Helper()
	path := testConfig(t, dir, smarthost, "")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "[store]\nbackend = \"postgres\"\ndsn = %q\n", dsn); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServeOnPostgres: two crewmail serve processes (nodes) on one PostgreSQL database. A post
// accepted by node A is archived and delivered once to each member; the admin commands work on
// the database while both serve, whichever node's configuration they are given; a member reads
// the post over IMAP on node B byte for byte, and an IDLE session on B hears of a post A
// accepted, and of a flag her session on A set. backup says to use pg_dump.
func TestServeOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	sink := mailtest.NewSink(t)
	a := startTestServer(t, postgresConfig(t, t.TempDir(), sink.Addr, dsn))
	b := startTestServer(t, postgresConfig(t, t.TempDir(), sink.Addr, dsn))
	a.mustCLI(t, "list", "create", crew, "-name", "Garden crew")
	b.mustCLI(t, "member", "add", crew, "alice@example.test", "bob@example.test")
	if out := a.mustCLI(t, "member", "ls", crew); !strings.Contains(out, "alice@example.test") || !strings.Contains(out, "bob@example.test") {
		t.Fatalf("member ls on node A after member add on node B:\n%s", out)
	}
	if out := b.mustCLI(t, "list", "ls"); !strings.Contains(out, crew) {
		t.Fatalf("list ls on node B:\n%s", out)
	}

	if err := send(t, a.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Archived", "pg1@example.test", "Kept in PostgreSQL.\r\n")); err != nil {
		t.Fatalf("post to node A: %v", err)
	}
	sink.Wait(t, 2)
	if err := ask(t, b, "bob@example.test", "crew+password@"+testDomain, "", true); err != nil {
		t.Fatal(err)
	}
	m := expect(t, sink, 3, "bob@example.test", "Password:")
	pw := passwordRE.FindStringSubmatch(text(t, m))[1]
	got := map[string]int{}
	for _, m := range sink.Messages()[:2] {
		got[m.To[0]]++
	}
	if got["alice@example.test"] != 1 || got["bob@example.test"] != 1 || len(sink.Messages()) != 3 {
		t.Fatalf("the post went to %v, and %d mails in all; want one copy to each member and the password", got, len(sink.Messages()))
	}
	if out := b.mustCLI(t, "archive", "ls", crew); !strings.Contains(out, "pg1@example.test") {
		t.Fatalf("archive ls on node B:\n%s", out)
	}

	numMessages := make(chan uint32, 16)
	flagged := make(chan bool, 16)
	c, err := imapclient.DialInsecure(b.IMAPAddr, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				numMessages <- *d.NumMessages
			}
		},
		Fetch: func(msg *imapclient.FetchMessageData) {
			if buf, err := msg.Collect(); err == nil && slices.Contains(buf.Flags, imap.FlagFlagged) {
				flagged <- true
			}
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("bob@example.test", pw).Wait(); err != nil {
		t.Fatalf("login on node B: %v", err)
	}
	if _, err := c.Select("crew", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH on node B: %v", err)
	}
	var raw []byte
	if err := a.st.View(func(tx store.Tx) error {
		_, raw, err = tx.Post(crew, 1)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var fetched []byte
	for _, s := range msgs[0].BodySection {
		fetched = s.Bytes
	}
	if !bytes.Equal(fetched, raw) || len(raw) == 0 {
		t.Errorf("the message fetched on node B differs from the one archived by node A")
	}

	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	if err := send(t, a.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Second", "pg2@example.test", "Seen everywhere.\r\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(time.Minute) // a failing test ends; no claim about speed
	for n := uint32(0); n != 2; {
		select {
		case n = <-numMessages:
		case <-deadline:
			t.Fatal("the IDLE session on node B never heard of the post node A accepted")
		}
	}

	// The same member flags the first post in a session on node A; her IDLE session on node B
	// is told (RFC 9051 §7.5.2), by way of the database's notification.
	ca, err := imapclient.DialInsecure(a.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	if err := ca.Login("bob@example.test", pw).Wait(); err != nil {
		t.Fatalf("login on node A: %v", err)
	}
	if _, err := ca.Select("crew", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect(); err != nil {
		t.Fatalf("STORE on node A: %v", err)
	}
	select {
	case <-flagged:
	case <-deadline:
		t.Fatal("the IDLE session on node B never heard of the flag set on node A")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}

	_, errOut, code := a.cli(t, "backup", t.TempDir()+"/copy.db")
	if code != 2 || !strings.Contains(errOut, "pg_dump") {
		t.Errorf("backup on PostgreSQL: exit %d, %q; want 2 and a word about pg_dump", code, errOut)
	}
}

// TestPostWhileDatabaseUnreachableIsTemporary: while PostgreSQL refuses the server's
// connections, a post is answered 451 (the sender tries again later), never a permanent
// refusal; once the database is back, the same post is accepted.
func TestPostWhileDatabaseUnreachableIsTemporary(t *testing.T) {
	dsn := pgtest.DSN(t)
	sink := mailtest.NewSink(t)
	ts := startTestServer(t, postgresConfig(t, t.TempDir(), sink.Addr, dsn))
	ts.mustCLI(t, "list", "create", crew)
	ts.mustCLI(t, "member", "add", crew, "alice@example.test")
	admin := pgtest.Need(t)
	name := dsn[strings.LastIndexByte(dsn, '/')+1:]
	name, _, _ = strings.Cut(name, "?")
	sql := func(q string) {
		t.Helper()
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	sql("ALTER DATABASE " + name + " WITH ALLOW_CONNECTIONS false")
	sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + name + "'")
	msg := post("alice@example.test", "Down", "down@example.test", "The database is away.\r\n")
	if code := smtpCode(send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, msg)); !strings.HasPrefix(code, "451 4.") {
		t.Fatalf("a post while the database is unreachable: %s, want 451 4.x.x", code)
	}
	sql("ALTER DATABASE " + name + " WITH ALLOW_CONNECTIONS true")
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, msg); err != nil {
		t.Fatalf("the same post once the database is back: %v", err)
	}
	sink.Wait(t, 1)
}

// TestDigestOnceAcrossNodes: two nodes run a digest round for the same list at the same time
// (as their schedulers do every minute); the daily member gets one digest, not two, and the
// next rounds send nothing more.
func TestDigestOnceAcrossNodes(t *testing.T) {
	dsn := pgtest.DSN(t)
	sink := mailtest.NewSink(t)
	a := startTestServer(t, postgresConfig(t, t.TempDir(), sink.Addr, dsn))
	b := startTestServer(t, postgresConfig(t, t.TempDir(), sink.Addr, dsn))
	a.mustCLI(t, "list", "create", crew)
	a.mustCLI(t, "member", "add", crew, "alice@example.test")
	a.mustCLI(t, "member", "add", crew, "bob@example.test", "-mode", "daily")
	for _, subject := range []string{"Seeds", "Tomatoes"} {
		if err := send(t, a.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", subject, subject+"@example.test", "About "+subject+".\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	sink.Wait(t, 2) // alice's copies
	for round := range 3 {
		sent := make(chan digest.Sent, 2)
		for _, ts := range []*testServer{a, b} {
			go func() {
				s, err := ts.digests.SendDue(crew, true)
				if err != nil {
					t.Errorf("round %d: %v", round, err)
				}
				sent <- s
			}()
		}
		if n := (<-sent).Digests + (<-sent).Digests; round == 0 && n != 1 || round > 0 && n != 0 {
			t.Fatalf("round %d: the two nodes sent %d digests together", round, n)
		}
	}
	expect(t, sink, 3, "bob@example.test", "Daily digest: 2 conversations, 2 messages")
	settle(t, a)
	settle(t, b)
	if n := len(sink.Messages()); n != 3 {
		t.Fatalf("%d mails went out, want alice's two copies and bob's one digest", n)
	}
}

// newCrewOnPostgres is newCrew on a PostgreSQL database of its own (the test is skipped without
// one).
func newCrewOnPostgres(t *testing.T, sink *mailtest.Sink, members ...string) *testServer {
	t.Helper()
	dsn := pgtest.DSN(t)
	ts := startTestServer(t, postgresConfig(t, t.TempDir(), sink.Addr, dsn))
	ts.mustCLI(t, "list", "create", "crew@"+testDomain, "-name", "Garden crew")
	if len(members) > 0 {
		ts.mustCLI(t, append([]string{"member", "add", "crew@" + testDomain}, members...)...)
	}
	return ts
}
