package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"crewmail/internal/mailtest"
	"crewmail/store"
	"crewmail/store/postgres/pgtest"
)

// Several crewmail nodes on one PostgreSQL database (issue 19): what an operator who runs two
// `crewmail serve` on one database must be able to count on. The tests need a PostgreSQL
// server: CREWMAIL_TEST_POSTGRES is a DSN of it (URL form) with the right to create databases,
// as scripts/pg-cluster prints; each test makes its own database and drops it at the end.

// nodesDatabase is the DSN of a new database on the server CREWMAIL_TEST_POSTGRES names,
// dropped when the test ends (store/postgres/pgtest). The test is skipped when the variable is
// unset.
func nodesDatabase(t testing.TB) string {
	t.Helper()
	return pgtest.DSN(t)
}

// nodeConfig is the configuration of one node: its own data folder (control socket, keys),
// the shared database at dsn, deliveries to smarthost.
func nodeConfig(t *testing.T, dsn, smarthost string) string {
	t.Helper()
	path := testConfig(t, t.TempDir(), smarthost, "")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(f, "[store]\nbackend = \"postgres\"\ndsn = %q\n", dsn); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// postOnce sends msg to addr without failing the test (it may run outside the test's
// goroutine); the error is the server's final reply, nil for 250.
func postOnce(addr, from string, to []string, msg []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.example.test"); err != nil {
		return err
	}
	return c.SendMail(from, to, bytes.NewReader(msg))
}

// archiveOf reads `archive ls -json` of crew: the sequences and Message-IDs, in order.
func archiveOf(t *testing.T, ts *testServer) (seqs []uint64, ids []string) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(ts.mustCLI(t, "archive", "ls", crew, "-json")))
	for dec.More() {
		var e struct {
			Seq       uint64 `json:"seq"`
			MessageID string `json:"message_id"`
		}
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, e.Seq)
		ids = append(ids, strings.Trim(e.MessageID, "<>"))
	}
	return seqs, ids
}

// copiesOf counts the sink's messages per "Message-ID recipient" of the posts it holds.
func copiesOf(t *testing.T, msgs []mailtest.Message) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, m := range msgs {
		i := bytes.Index(m.Data, []byte("\r\nMessage-ID: <"))
		if i < 0 {
			continue
		}
		id := m.Data[i+len("\r\nMessage-ID: <"):]
		id = id[:bytes.IndexByte(id, '>')]
		for _, r := range m.To {
			n[string(id)+" "+r]++
		}
	}
	return n
}

// TestTwoNodesOnePostgres: two nodes on one database take posts at the same time; every member
// gets every post exactly once, the archive numbers them 1…N without a gap, and a member's
// IMAP session on node B, idling, sees the posts node A accepted.
func TestTwoNodesOnePostgres(t *testing.T) {
	dsn := nodesDatabase(t)
	t.Parallel()
	sink := mailtest.NewSink(t)
	a := startTestServer(t, nodeConfig(t, dsn, sink.Addr))
	b := startTestServer(t, nodeConfig(t, dsn, sink.Addr))
	members := []string{"alice@example.test", "bob@example.test", "carol@example.test"}
	// Made on A, seen on B: the admin commands talk to the database, not to a node.
	a.mustCLI(t, "list", "create", crew, "-name", "Garden crew")
	b.mustCLI(t, append([]string{"member", "add", crew}, members...)...)
	if out := a.mustCLI(t, "member", "ls", crew); !strings.Contains(out, "carol@example.test") {
		t.Fatalf("member ls on A after member add on B:\n%s", out)
	}

	// Bob asks node A for an app password and uses it on node B.
	if err := ask(t, a, "bob@example.test", "crew+password@"+testDomain, "", true); err != nil {
		t.Fatal(err)
	}
	pw := passwordRE.FindStringSubmatch(text(t, expect(t, sink, 1, "bob@example.test", "Password:")))[1]
	exists := make(chan uint32, 100)
	c, err := imapclient.DialInsecure(b.IMAPAddr, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("bob@example.test", pw).Wait(); err != nil {
		t.Fatalf("login on B with the password A mailed: %v", err)
	}
	if sel, err := c.Select("crew", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil || sel.NumMessages != 0 {
		t.Fatalf("SELECT crew on B: %+v %v", sel, err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}

	// Each node gets half the posts, from four sessions at once.
	const perNode, sessions = 12, 4
	nodes := []*testServer{a, b}
	var wg sync.WaitGroup
	errs := make(chan error, 2*perNode)
	var want []string
	for n, node := range nodes {
		for s := range sessions {
			var ids []string
			for i := s; i < perNode; i += sessions {
				ids = append(ids, fmt.Sprintf("node%d-%d@example.test", n, i))
			}
			want = append(want, ids...)
			wg.Go(func() {
				for _, id := range ids {
					msg := post("alice@example.test", "From node "+id, id, "Posted to one node, read on both.\r\n")
					if err := postOnce(node.SMTPAddr, "alice@example.test", []string{crew}, msg); err != nil {
						errs <- fmt.Errorf("%s: %w", id, err)
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("post refused: %v", err)
	}
	if t.Failed() {
		t.FailNow()
	}
	total := 2 * perNode
	sink.Wait(t, 1+total*len(members))
	settle(t, a) // the outbox is the database's: empty for both nodes
	settle(t, b)
	got := sink.Messages()
	if len(got) != 1+total*len(members) {
		t.Errorf("%d deliveries, want %d (the password mail and %d posts × %d members)", len(got), 1+total*len(members), total, len(members))
	}
	copies := copiesOf(t, got)
	for _, id := range want {
		for _, m := range members {
			if n := copies[id+" "+m]; n != 1 {
				t.Errorf("%s got %d copies of %s, want 1", m, n, id)
			}
		}
	}

	seqs, ids := archiveOf(t, b)
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Errorf("archive sequences %v: not 1…%d without a gap", seqs, total)
			break
		}
	}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("archive holds %v\nwant %v", ids, want)
	}

	// B's idling session saw all of them (A's posts included), then reads them.
	deadline := time.After(60 * time.Second)
	for last := uint32(0); last < uint32(total); {
		select {
		case last = <-exists:
		case <-deadline:
			t.Fatalf("IDLE on B reported %d messages, want %d", last, total)
		}
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	var all imap.SeqSet
	all.AddRange(1, uint32(total))
	msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Envelope: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var imapIDs []string
	for i, m := range msgs {
		if m.UID != imap.UID(i+1) {
			t.Errorf("message %d has UID %d, want %d (UID = archive sequence)", i+1, m.UID, i+1)
		}
		imapIDs = append(imapIDs, m.Envelope.MessageID)
	}
	slices.Sort(imapIDs)
	if !slices.Equal(imapIDs, want) {
		t.Errorf("IMAP on B shows %v\nwant %v", imapIDs, want)
	}
}

// TestNodeKilledMidDeliveryLeavesItToAnother: node A (its own process) is killed with SIGKILL
// while its deliveries are in flight. Node B does not take them while A's lease holds (nor at
// its start), and delivers them once the lease has run out: nothing acknowledged is lost.
func TestNodeKilledMidDeliveryLeavesItToAnother(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dsn := nodesDatabase(t)
	t.Parallel()
	stuck := mailtest.NewSink(t) // A's smarthost: takes the data, never answers
	release := stuck.Hold()
	defer release()
	// One delivery worker: A claims two rows (its batch), sends one, and claims nothing more
	// while the other waits for the worker, so B's post below is B's to deliver.
	cfgA := nodeConfig(t, dsn, stuck.Addr)
	text, err := os.ReadFile(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	text = bytes.Replace(text, []byte("smarthost_tls = \"none\"\n"), []byte("smarthost_tls = \"none\"\nworkers = 1\n"), 1)
	if err := os.WriteFile(cfgA, text, 0o600); err != nil {
		t.Fatal(err)
	}
	pa := startProcess(t, cfgA)
	for _, args := range [][]string{{"list", "create", crew}, {"member", "add", crew, "alice@example.test", "bob@example.test"}} {
		if out, errOut, code := runCLI(t, cfgA, args...); code != 0 {
			t.Fatalf("%v: %s%s", args, out, errOut)
		}
	}
	msg := post("alice@example.test", "Survives", "survive@example.test", "still here\r\n")
	if err := send(t, pa.smtpAddr, "alice@example.test", []string{crew}, msg); err != nil {
		t.Fatalf("post refused on A: %v", err)
	}
	for deadline := time.Now().Add(60 * time.Second); stuck.Held() < 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("A's delivery never reached its smarthost")
		}
	}

	// B starts while A holds the leases, and delivers a post of its own: its workers have
	// looked at the outbox, and A's rows were not theirs to take.
	sink := mailtest.NewSink(t)
	b := startTestServer(t, nodeConfig(t, dsn, sink.Addr))
	own := post("bob@example.test", "From B", "from-b@example.test", "while A lives\r\n")
	if err := send(t, b.SMTPAddr, "bob@example.test", []string{crew}, own); err != nil {
		t.Fatalf("post refused on B: %v", err)
	}
	sink.Wait(t, 2) // B's queue has run: released its own leases (none) and claimed
	b.waitOutbox(t, "B's own post delivered, A's two rows still leased by A", func(rows []store.Delivery) bool {
		return len(rows) == 2 && rows[0].Leased && rows[1].Leased
	})
	for _, m := range sink.Messages() {
		if bytes.Contains(m.Data, []byte("survive@example.test")) {
			t.Fatalf("B delivered A's leased row to %v while A was alive", m.To)
		}
	}

	pa.kill(t)
	// A's leases run out (B's clock moves past them: A's queue has B's configuration but
	// for its workers, which the lease does not depend on); B delivers A's rows.
	b.clock.Advance(b.queue.Lease() + time.Minute)
	b.queue.Wake()
	sink.Wait(t, 4)
	settle(t, b)
	got := sink.Messages()
	copies := copiesOf(t, got)
	for _, m := range []string{"alice@example.test", "bob@example.test"} {
		if copies["survive@example.test "+m] != 1 || copies["from-b@example.test "+m] != 1 {
			t.Errorf("%s got %d copies of A's post and %d of B's, want 1 each", m, copies["survive@example.test "+m], copies["from-b@example.test "+m])
		}
	}
	if len(got) != 4 {
		t.Errorf("B's smarthost got %d messages, want 4", len(got))
	}
	if _, ids := archiveOf(t, b); !slices.Equal(ids, []string{"survive@example.test", "from-b@example.test"}) {
		t.Errorf("archive after the kill: %v", ids)
	}
}

// TestDigestRoundOnTwoNodesAtOnce: both nodes run the daily round at the same instant; each
// daily member gets one digest, not two.
func TestDigestRoundOnTwoNodesAtOnce(t *testing.T) {
	dsn := nodesDatabase(t)
	t.Parallel()
	sink := mailtest.NewSink(t)
	a := startTestServer(t, nodeConfig(t, dsn, sink.Addr))
	b := startTestServer(t, nodeConfig(t, dsn, sink.Addr))
	a.mustCLI(t, "list", "create", crew, "-name", "Garden crew")
	daily := []string{"bob@example.test", "carol@example.test", "dave@example.test", "erin@example.test"}
	a.mustCLI(t, append([]string{"member", "add", crew, "-mode", "daily"}, daily...)...)
	for i, node := range []*testServer{a, b, a} {
		id := fmt.Sprintf("d%d@example.test", i)
		if err := send(t, node.SMTPAddr, "bob@example.test", []string{crew}, post("bob@example.test", "Seeds "+id, id, "About seeds.\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, a)
	if n := len(sink.Messages()); n != 0 {
		t.Fatalf("%d mails before the round; daily members get none", n)
	}
	// Both clocks a day on, past the daily hour; both rounds start together.
	a.clock.Advance(25 * time.Hour)
	b.clock.Advance(25 * time.Hour)
	start := make(chan struct{})
	var wg sync.WaitGroup
	sent := make([]int, 2)
	for i, node := range []*testServer{a, b} {
		wg.Go(func() {
			<-start
			s, err := node.digests.SendDue("", false)
			if err != nil {
				t.Errorf("node %d's round: %v", i, err)
			}
			sent[i] = s.Members
		})
	}
	close(start)
	wg.Wait()
	if sent[0]+sent[1] != len(daily) {
		t.Errorf("the rounds say they sent %d and %d digests, want %d in all", sent[0], sent[1], len(daily))
	}
	sink.Wait(t, len(daily))
	settle(t, a)
	per := map[string]int{}
	for _, m := range sink.Messages() {
		if !strings.Contains(string(m.Data), "Daily digest") {
			t.Errorf("a mail to %v that is not a digest:\n%s", m.To, m.Data)
		}
		for _, r := range m.To {
			per[r]++
		}
	}
	for _, m := range daily {
		if per[m] != 1 {
			t.Errorf("%s got %d digests, want 1", m, per[m])
		}
	}
}

// TestServeOnPostgresMakesItsDataFolder: on bbolt the data folder is made when the database
// file is; on PostgreSQL nothing is stored there but the control socket, keys and templates,
// and serve must make it all the same, as the zero-config data_dir ./crewmail-data needs.
func TestServeOnPostgresMakesItsDataFolder(t *testing.T) {
	dsn := nodesDatabase(t)
	t.Parallel()
	sink := mailtest.NewSink(t)
	path := testConfig(t, t.TempDir(), sink.Addr, "") // its data folder does not exist yet
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "[store]\nbackend = \"postgres\"\ndsn = %q\n", dsn)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	ts := startTestServer(t, path)
	ts.mustCLI(t, "list", "create", crew)
}

// TestConcurrentPostsToOneListDoNotStarveThePool: posts to one list from more sessions at once
// than the node has database connections. Each post holds its list's counter row until it
// commits; were a post to need a second connection inside its transaction (as reading the
// list's incarnation for a VERP token did, through the pool), the posts waiting for the row
// would hold every connection and the one holding the row would wait for a connection
// forever. Here the pool has 2 connections (pool_max_conns) and 6 sessions post at once.
func TestConcurrentPostsToOneListDoNotStarveThePool(t *testing.T) {
	dsn := nodesDatabase(t)
	t.Parallel()
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	sink := mailtest.NewSink(t)
	ts := startTestServer(t, nodeConfig(t, dsn+sep+"pool_max_conns=2", sink.Addr))
	ts.mustCLI(t, "list", "create", crew)
	ts.mustCLI(t, "member", "add", crew, "alice@example.test", "bob@example.test")
	const sessions = 6
	done := make(chan error, sessions)
	for i := range sessions {
		go func() {
			id := fmt.Sprintf("many%d@example.test", i)
			done <- postOnce(ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "At once", id, "one of many\r\n"))
		}()
	}
	// A deadline for a hang, not a measure of speed: posts take milliseconds.
	deadline := time.After(60 * time.Second)
	for i := range sessions {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("post refused: %v", err)
			}
		case <-deadline:
			t.Fatalf("%d of %d concurrent posts to one list still unanswered after 60 s: the node is stuck", sessions-i, sessions)
		}
	}
	sink.Wait(t, 2*sessions)
}

// TestDeferredDeliveryNotLeftForTheLease: the member's server answers 451, and the database is
// gone at that moment (as during a failover), so the deferral cannot be recorded. Once the
// database answers again the delivery must be tried again on its retry schedule (a minute
// for a first attempt), not left leased to its node until the lease ends (30 minutes): on
// PostgreSQL not even a restart gives it back, since a restarted node is a new node. Seen in
// test/t-15-postgres-nodes, where posts claimed just before the primary stopped waited for
// their leases.
func TestDeferredDeliveryNotLeftForTheLease(t *testing.T) {
	dsn := nodesDatabase(t)
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := startTestServer(t, nodeConfig(t, dsn, sink.Addr))
	ts.mustCLI(t, "list", "create", crew)
	ts.mustCLI(t, "member", "add", crew, "alice@example.test")
	faults := ts.st.(interface{ Faults() store.Faults }).Faults()
	var deferred sync.WaitGroup
	deferred.Add(1)
	var once sync.Once
	sink.Reject = func(mailtest.Message) error {
		refused := false
		once.Do(func() {
			// The attempt is under way and the database goes away for the next two commits:
			// the outcome's is one of them, whether or not the claim that follows the attempt
			// (committed beside it) comes first.
			if err := faults.FailCommits(2, errors.New("the database went away")); err != nil {
				t.Error(err)
			}
			refused = true
			deferred.Done()
		})
		if refused {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
		return nil
	}
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Later", "later@example.test", "text\r\n")); err != nil {
		t.Fatal(err)
	}
	deferred.Wait()
	// The database answers again: the deferral is written after all, and the row is no longer
	// leased (without that it stays leased until its lease ends). Only then does the clock
	// move, so that the deferral's retry time was read before it: the retry is due after the
	// first back-off (about a minute).
	ts.waitOutbox(t, "the deferred row written again, no longer leased", func(rows []store.Delivery) bool {
		return len(rows) == 1 && !rows[0].Leased
	})
	ts.clock.Advance(3 * time.Minute)
	ts.queue.Wake()
	if got := sink.Wait(t, 1); len(got) != 1 || got[0].To[0] != "alice@example.test" {
		t.Fatalf("after the retry: %d messages", len(got))
	}
}
