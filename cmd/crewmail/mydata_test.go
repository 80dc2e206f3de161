package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"

	"crewmail/config"
	"crewmail/internal/mailtest"
	"crewmail/lists"
	"crewmail/store"
)

var request = "crew-request@" + testDomain

// attachments are the attached files of m, by file name.
func attachments(t *testing.T, m mailtest.Message) map[string][]byte {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		if h, ok := p.Header.(*mail.AttachmentHeader); ok {
			name, _ := h.Filename()
			out[name], _ = io.ReadAll(p.Body)
		}
	}
}

// confirmFrom sends any mail from addr to the confirm address m names (unproven: the token
// is the proof).
func confirmFrom(t *testing.T, ts *testServer, m mailtest.Message, addr string) {
	t.Helper()
	cs := confirmAddresses(t, m)
	if len(cs) == 0 {
		t.Fatalf("no confirm address in:\n%s", text(t, m))
	}
	if err := ask(t, ts, addr, cs[len(cs)-1], "yes\r\n", false); err != nil {
		t.Fatal(err)
	}
}

// TestChangeAddressKeepsAuthorship: a proven "change-address" sends a confirmation to the new
// address; its answer moves the membership, the read state and the authorship of past posts,
// and the old address hears of it. The new address then posts as the member.
func TestChangeAddressKeepsAuthorship(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	changeAddressKeepsAuthorship(t, newCrew(t, sink, "alice@example.test", "bob@example.test"), sink)
}

// TestChangeAddressKeepsAuthorshipOnPostgres: the same on PostgreSQL.
func TestChangeAddressKeepsAuthorshipOnPostgres(t *testing.T) {
	sink := mailtest.NewSink(t)
	ts := newCrewOnPostgres(t, sink, "alice@example.test", "bob@example.test")
	t.Parallel()
	changeAddressKeepsAuthorship(t, ts, sink)
}

func changeAddressKeepsAuthorship(t *testing.T, ts *testServer, sink *mailtest.Sink) {
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Seeds", "s1@example.test", "I have seeds.\r\n")); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	var alice store.Member
	if err := ts.st.Update(func(tx store.Tx) error {
		var err error
		if alice, err = tx.Member(crew, "alice@example.test"); err != nil {
			return err
		}
		return tx.SetFlags(crew, alice.ID, 1, store.FlagSeen)
	}); err != nil {
		t.Fatal(err)
	}
	if err := ask(t, ts, "alice@example.test", request, "change-address ali@example.test\r\n", true); err != nil {
		t.Fatal(err)
	}
	expectSome(t, ts, sink, "alice@example.test", "change-address: a confirmation went to ali@example.test")
	c := expectSome(t, ts, sink, "ali@example.test", "Confirm: your new address", "alice@example.test")
	if strings.Contains(members(t, ts), "ali@example.test") {
		t.Fatal("the address moved before the new one confirmed")
	}
	confirmFrom(t, ts, c, "ali@example.test")
	expectSome(t, ts, sink, "alice@example.test", "is now ali@example.test", "If you did not ask for this")
	expectSome(t, ts, sink, "ali@example.test", "is now ali@example.test")
	ms := members(t, ts)
	if strings.Contains(ms, "alice@example.test") || !strings.Contains(ms, "ali@example.test") {
		t.Fatalf("members after the change:\n%s", ms)
	}
	if out := ts.mustCLI(t, "archive", "ls", crew); !strings.Contains(out, "ali@example.test") || strings.Contains(out, "alice@example.test") {
		t.Errorf("the post's author did not move:\n%s", out)
	}
	if err := ts.st.View(func(tx store.Tx) error {
		m, err := tx.Member(crew, "ali@example.test")
		if err != nil || m.ID != alice.ID {
			t.Errorf("moved member: %+v %v", m, err)
		}
		n := 0
		return tx.FlagsOf(crew, m.ID, func(seq uint64, f byte) error {
			if n++; seq != 1 || f != store.FlagSeen {
				t.Errorf("read state after the move: %d %b", seq, f)
			}
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	// She posts from her new address, as a member; bob gets it.
	before := len(sink.Messages())
	if err := send(t, ts.SMTPAddr, "ali@example.test", []string{crew}, post("ali@example.test", "Moved", "s2@example.test", "New address.\r\n")); err != nil {
		t.Fatalf("a post from the new address: %v", err)
	}
	expectSome(t, ts, sink, "bob@example.test", "New address.")
	if len(sink.Messages()) <= before {
		t.Error("nothing went out for the post from the new address")
	}
}

// TestForgedMyDataCommandsOnlyAskTheAddressOnFile: "export" and "change-address" under a
// member's forged From send nothing anywhere but one answer to the member's address, which
// asks her to confirm; nothing moves and no data goes out.
func TestForgedMyDataCommandsOnlyAskTheAddressOnFile(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	if err := ask(t, ts, "alice@example.test", request, "export\r\nchange-address mallory@elsewhere.example\r\n", false); err != nil {
		t.Fatal(err)
	}
	m := expect(t, sink, 1, "alice@example.test", "export: your address could not be verified", "change-address: your address could not be verified", "a copy of your data", "moving your address to mallory@elsewhere.example")
	settle(t, ts)
	for _, got := range sink.Messages() {
		if got.To[0] != "alice@example.test" {
			t.Errorf("a mail went to %s:\n%s", got.To[0], got.Data)
		}
	}
	if len(sink.Messages()) != 1 || len(attachments(t, m)) != 0 {
		t.Errorf("%d mails, the answer with %d attachments", len(sink.Messages()), len(attachments(t, m)))
	}
	if ms := members(t, ts); !strings.Contains(ms, "alice@example.test") || strings.Contains(ms, "mallory") {
		t.Errorf("members:\n%s", ms)
	}
}

// TestExportByMail: a member's proven "export" brings her, at the address on file, her
// memberships with how each began and was confirmed, her settings, and her posts as an mbox
// (nobody else's).
func TestExportByMail(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	ts.mustCLI(t, "list", "set", crew, "-owner", owner)
	ts.mustCLI(t, "member", "set", crew, "alice@example.test", "-no-own-posts")
	for _, p := range []struct{ from, id, body string }{{"alice@example.test", "e1@example.test", "Alice's words.\r\n"}, {"bob@example.test", "e2@example.test", "Bob's words.\r\n"}} {
		if err := send(t, ts.SMTPAddr, p.from, []string{crew}, post(p.from, "Words", p.id, p.body)); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, ts)
	if err := ask(t, ts, "alice@example.test", request, "export\r\n", true); err != nil {
		t.Fatal(err)
	}
	m := expectSome(t, ts, sink, "alice@example.test", "Subject: Your data on Garden crew", "my-posts.mbox")
	expectSome(t, ts, sink, "alice@example.test", "export: your data went to alice@example.test")
	files := attachments(t, m)
	var d lists.MyData
	if err := json.Unmarshal(files["my-data.json"], &d); err != nil {
		t.Fatalf("my-data.json: %v\n%s", err, files["my-data.json"])
	}
	if d.Address != "alice@example.test" || len(d.Memberships) != 1 || d.Posts != 1 {
		t.Fatalf("my-data.json: %+v", d)
	}
	ms := d.Memberships[0]
	if ms.List != crew || ms.Origin != store.OriginOperator || !strings.Contains(ms.Consent, "added by the operator") || ms.Since.IsZero() || !ms.NoOwnPosts {
		t.Errorf("membership: %+v", ms)
	}
	box := string(files["my-posts.mbox"])
	if !strings.HasPrefix(box, "From alice@example.test ") || !strings.Contains(box, "Alice's words.") || strings.Contains(box, "Bob's words.") {
		t.Errorf("my-posts.mbox:\n%s", box)
	}
	// The operator answers a data request with the same record (crewmail member data).
	var op lists.MyData
	if err := json.Unmarshal([]byte(ts.mustCLI(t, "member", "data", "Alice@Example.test")), &op); err != nil || op.Address != "alice@example.test" || len(op.Memberships) != 1 || op.Memberships[0].Consent != ms.Consent || op.Posts != 1 {
		t.Errorf("member data: %+v %v", op, err)
	}
	if out := ts.mustCLI(t, "member", "data", "alice@example.test", "-mbox"); out != box {
		t.Errorf("member data -mbox differs from the mailed mbox:\n%s", out)
	}
}

// TestDirectoryAndLineageOnlyForMembers: an owner invites carol by mail; she accepts. With
// -directory members, carol's "who" shows the crew with who brought her in and her proven
// posts; a stranger's "who" shows nobody; with the default (owners) a member is told it is
// the owners'. -invite-by members lets a member invite; on an approve list the owners decide,
// and the directory says both who invited and who approved.
func TestDirectoryAndLineageOnlyForMembers(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	ts.mustCLI(t, "list", "set", crew, "-owner", owner, "-directory", "members", "-invite-by", "members", "-join", "approve")
	ts.mustCLI(t, "member", "mode", crew, "alice@example.test", "daily")
	if err := ask(t, ts, owner, request, "invite carol@example.test\r\n", true); err != nil {
		t.Fatal(err)
	}
	inv := expectSome(t, ts, sink, "carol@example.test", "invit")
	confirmFrom(t, ts, inv, "carol@example.test")
	expectSome(t, ts, sink, "carol@example.test", "Welcome")
	if err := send(t, ts.SMTPAddr, "carol@example.test", []string{crew}, post("carol@example.test", "Hello", "c1@example.test", "Hi all.\r\n")); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	if err := ask(t, ts, "carol@example.test", request, "who\r\n", true); err != nil {
		t.Fatal(err)
	}
	expectSome(t, ts, sink, "carol@example.test", "who: 2 members:", "- alice@example.test, since ", "added by the operator, 0 of 0 posts proven", "- carol@example.test, since ", "invited by "+owner+", 1 of 1 posts proven")

	// A digest shows who brought the newcomer in beside her first post.
	for _, html := range []string{"", "-html"} {
		args := []string{"digest", "preview", crew, "-member", "alice@example.test"}
		if html != "" {
			args = append(args, html)
		}
		if d := ts.mustCLI(t, args...); !strings.Contains(d, "Hi all.") || !strings.Contains(d, "new member, invited by "+owner) {
			t.Errorf("the digest does not say who brought carol in:\n%s", d)
		}
	}

	// A member invites dave; the owners approve; the directory says both.
	if err := ask(t, ts, "alice@example.test", request, "invite dave@example.test\r\n", true); err != nil {
		t.Fatal(err)
	}
	expectSome(t, ts, sink, "alice@example.test", "invite dave@example.test: invitation sent.")
	confirmFrom(t, ts, expectSome(t, ts, sink, "dave@example.test", "invit"), "dave@example.test")
	settle(t, ts)
	if strings.Contains(members(t, ts), "dave") {
		t.Fatal("a member's invitee joined an approve list without the owners")
	}
	expectSome(t, ts, sink, owner, "Subject: dave@example.test asks to join", "alice@example.test, a member, invited dave@example.test")
	ts.mustCLI(t, "pending", "approve", crew, pendingID(t, ts, "dave@example.test"))
	if err := ask(t, ts, "carol@example.test", request, "who\r\n", true); err != nil {
		t.Fatal(err)
	}
	expectSome(t, ts, sink, "carol@example.test", "who: 3 members:", "dave@example.test, since ", "invited by alice@example.test, approved by the operator")

	// A stranger sees nobody.
	if err := ask(t, ts, "eve@example.test", request, "who\r\n", true); err != nil {
		t.Fatal(err)
	}
	e := expectSome(t, ts, sink, "eve@example.test", "who: the members of "+crew+" are shown only to its members.")
	if strings.Contains(text(t, e), "carol@") || strings.Contains(text(t, e), "alice@") {
		t.Errorf("a stranger was shown members:\n%s", text(t, e))
	}
	// The owners' setting keeps it from members.
	ts.mustCLI(t, "list", "set", crew, "-directory", "owners")
	ts.clock.Advance(61 * 60e9)
	if err := ask(t, ts, "carol@example.test", request, "who\r\n", true); err != nil {
		t.Fatal(err)
	}
	expectSome(t, ts, sink, "carol@example.test", "who: only the owners of "+crew+" may see its directory.")
}

// pendingID is the ID `pending ls` shows for addr's request.
func pendingID(t *testing.T, ts *testServer, addr string) string {
	t.Helper()
	for _, line := range strings.Split(ts.mustCLI(t, "pending", "ls", crew), "\n") {
		if strings.Contains(line, addr) {
			return strings.Fields(line)[0]
		}
	}
	t.Fatalf("no pending request of %s", addr)
	return ""
}

// imapFetch logs in as addr and returns the mailbox's UIDVALIDITY and each message by UID.
func imapFetch(t *testing.T, ts *testServer, addr, pw string) (uint32, map[imap.UID][]byte) {
	t.Helper()
	c, err := imapclient.DialInsecure(ts.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(addr, pw).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("crew", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[imap.UID][]byte{}
	for _, m := range msgs {
		for _, b := range m.BodySection {
			out[m.UID] = b.Bytes
		}
	}
	c.Logout().Wait()
	return sel.UIDValidity, out
}

// TestForgetMeRedactAndAnonymise: alice asks to be forgotten with her posts redacted, carol
// with hers anonymised; each confirms. They leave the list and their records go; over IMAP
// (under a new UIDVALIDITY), in the list's export and in a digest, alice's post is a
// tombstone in its place in the thread and carol's has a pseudonym for author and keeps its
// words; neither address is left in them. A backup made before, restored, shows the same.
func TestForgetMeRedactAndAnonymise(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test", "carol@example.test")
	ts.mustCLI(t, "member", "mode", crew, "bob@example.test", "daily")
	posts := []struct{ from, id, body string }{
		{"Alice Smith <alice@example.test>", "f1@example.test", "Alice's secret plans.\r\n"},
		{"Carol <carol@example.test>", "f2@example.test", "Carol's garden notes.\r\n"},
	}
	for _, p := range posts {
		env := strings.TrimSuffix(strings.Split(p.from, "<")[1], ">")
		if err := send(t, ts.SMTPAddr, env, []string{crew}, post(p.from, "Plans", p.id, p.body)); err != nil {
			t.Fatal(err)
		}
	}
	reply := []byte("From: bob@example.test\r\nTo: " + crew + "\r\nSubject: Re: Plans\r\nDate: Wed, 25 Nov 2026 11:00:00 +0000\r\nMessage-ID: <f3@example.test>\r\nIn-Reply-To: <f1@example.test>\r\nReferences: <f1@example.test>\r\n\r\nGood plans.\r\n")
	if err := send(t, ts.SMTPAddr, "bob@example.test", []string{crew}, reply); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	backup := filepath.Join(t.TempDir(), "before.db")
	ts.mustCLI(t, "backup", backup)
	ts.mustCLI(t, "member", "password", crew, "bob@example.test")
	pw := passwordRE.FindStringSubmatch(text(t, expectSome(t, ts, sink, "bob@example.test", "Password:")))[1]
	validity, before := imapFetch(t, ts, "bob@example.test", pw)
	if !bytes.Contains(before[1], []byte("Alice's secret plans.")) {
		t.Fatalf("UID 1 before: %s", before[1])
	}

	// A session that has the mailbox selected while its posts are redacted.
	open, err := imapclient.DialInsecure(ts.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err = open.Login("bob@example.test", pw).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := open.Select("crew", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}

	for _, who := range []struct{ addr, how string }{{"alice@example.test", "redact"}, {"carol@example.test", "anonymise"}} {
		if err := ask(t, ts, who.addr, request, "forget "+who.how+"\r\n", true); err != nil {
			t.Fatal(err)
		}
		c := expectSome(t, ts, sink, who.addr, "forget: a confirmation went to "+who.addr)
		if !strings.Contains(members(t, ts), who.addr) {
			t.Fatalf("%s was forgotten before confirming", who.addr)
		}
		confirmFrom(t, ts, c, who.addr)
		expectSome(t, ts, sink, who.addr, "Subject: "+who.addr+" was forgotten")
		if strings.Contains(members(t, ts), who.addr) {
			t.Fatalf("%s is still a member", who.addr)
		}
	}
	check := func(where string, alice, carol, bob []byte) {
		t.Helper()
		for _, b := range [][]byte{alice, carol, bob} {
			if bytes.Contains(b, []byte("alice@example.test")) && !bytes.Contains(b, []byte("f1@example.test")) || bytes.Contains(b, []byte("carol@example.test")) {
				t.Errorf("%s: an address of a forgotten member is left:\n%s", where, b)
			}
		}
		if !bytes.Contains(alice, []byte("removed at the author's request")) || bytes.Contains(alice, []byte("secret plans")) || bytes.Contains(alice, []byte("Alice Smith")) {
			t.Errorf("%s: alice's post is not a tombstone:\n%s", where, alice)
		}
		if !bytes.Contains(carol, []byte("Carol's garden notes.")) || !bytes.Contains(carol, []byte("former-member-")) {
			t.Errorf("%s: carol's post is not anonymised:\n%s", where, carol)
		}
		if !bytes.Contains(bob, []byte("Good plans.")) || !bytes.Contains(bob, []byte("In-Reply-To: <f1@example.test>")) {
			t.Errorf("%s: bob's reply changed:\n%s", where, bob)
		}
	}
	// The open session's UIDs no longer name what they named: it gets no new bytes under
	// them (RFC 9051 §2.3.1.1), and the connection ends.
	msgs, err := open.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err == nil {
		for _, m := range msgs {
			for _, b := range m.BodySection {
				if !bytes.Contains(b.Bytes, []byte("secret plans")) {
					t.Errorf("a session selected before the redaction got other bytes under the same UID:\n%s", b.Bytes)
				}
			}
		}
		if err := open.Noop().Wait(); err == nil {
			t.Error("a session selected before the redaction goes on")
		}
	}
	newValidity, after := imapFetch(t, ts, "bob@example.test", pw)
	if newValidity == validity {
		t.Errorf("UIDVALIDITY stayed %d though messages changed", validity)
	}
	check("IMAP", after[1], after[2], after[3])
	if !bytes.Contains(after[1], []byte("Message-ID: <f1@example.test>")) {
		t.Errorf("the tombstone lost its place in the thread:\n%s", after[1])
	}
	box := ts.mustCLI(t, "export", crew)
	parts := strings.Split(box, "\nFrom ")
	if len(parts) != 3 {
		t.Fatalf("export has %d messages:\n%s", len(parts), box)
	}
	check("export", []byte(parts[0]), []byte(parts[1]), []byte(parts[2]))
	digest := ts.mustCLI(t, "digest", "preview", crew, "-member", "bob@example.test")
	if strings.Contains(digest, "secret plans") || strings.Contains(digest, "alice@example.test") || strings.Contains(digest, "carol@example.test") || !strings.Contains(digest, "garden notes") {
		t.Errorf("the digest not yet sent:\n%s", digest)
	}

	// Search by mail finds carol's words, not alice's nor either name.
	for q, want := range map[string]string{"secret": "search secret: nothing found.", "Smith": "search Smith: nothing found.", "garden": "search garden: 1 conversation"} {
		ts.clock.Advance(61 * time.Minute) // one answer an hour to an address
		if err := ask(t, ts, "bob@example.test", request, "search "+q+"\r\n", true); err != nil {
			t.Fatal(err)
		}
		expectSome(t, ts, sink, "bob@example.test", want)
	}

	// The backup from before, restored in place of the database, gets the redactions again.
	cfg, err := config.Load(ts.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ts.stop()
	data, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, store.FileName), data, 0o600); err != nil {
		t.Fatal(err)
	}
	ts2 := startTestServer(t, ts.cfgPath)
	box = ts2.mustCLI(t, "export", crew)
	parts = strings.Split(box, "\nFrom ")
	if len(parts) != 3 {
		t.Fatalf("restored export has %d messages:\n%s", len(parts), box)
	}
	check("the restored backup", []byte(parts[0]), []byte(parts[1]), []byte(parts[2]))
}

// TestOwnerRedactsAPost: crewmail post redact replaces the post with a tombstone giving the
// owners' reason, everywhere the archive is read.
func TestOwnerRedactsAPost(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ownerRedactsAPost(t, newCrew(t, sink, "alice@example.test", "bob@example.test"), sink)
}

// TestOwnerRedactsAPostOnPostgres: the same on PostgreSQL.
func TestOwnerRedactsAPostOnPostgres(t *testing.T) {
	sink := mailtest.NewSink(t)
	ts := newCrewOnPostgres(t, sink, "alice@example.test", "bob@example.test")
	t.Parallel()
	ownerRedactsAPost(t, ts, sink)
}

func ownerRedactsAPost(t *testing.T, ts *testServer, sink *mailtest.Sink) {
	if err := send(t, ts.SMTPAddr, "bob@example.test", []string{crew}, post("bob@example.test", "Buy now", "sp@example.test", "Cheap pills.\r\n")); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	if out := ts.mustCLI(t, "post", "redact", crew, "1", "-reason", "removed by the owners: spam"); !strings.Contains(out, "post 1 of "+crew+" redacted") {
		t.Errorf("post redact said %q", out)
	}
	box := ts.mustCLI(t, "export", crew)
	if strings.Contains(box, "Cheap pills") || !strings.Contains(box, "This post was removed by the owners: spam.") || !strings.Contains(box, "Message-ID: <sp@example.test>") {
		t.Errorf("export after the redaction:\n%s", box)
	}
	if _, errOut, code := ts.cli(t, "post", "redact", crew, "7"); code == 0 || !strings.Contains(errOut, "has no post 7") {
		t.Errorf("redacting a post that is not there: exit %d, %q", code, errOut)
	}
}

// TestRetentionRedactsOldPosts: with list set -keep 30d, a post older than 30 days becomes a
// tombstone in its place when retention runs, and a newer one stays; a -keep that is not a
// retention is refused.
func TestRetentionRedactsOldPosts(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Old", "old@example.test", "Old words.\r\n")); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	ts.clock.Advance(31 * 24 * time.Hour)
	if err := send(t, ts.SMTPAddr, "bob@example.test", []string{crew}, post("bob@example.test", "New", "new@example.test", "New words.\r\n")); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	if _, errOut, code := ts.cli(t, "list", "set", crew, "-keep", "2w"); code == 0 || !strings.Contains(errOut, "not \"2w\"") {
		t.Errorf("-keep 2w: exit %d, %q", code, errOut)
	}
	ts.mustCLI(t, "list", "set", crew, "-keep", "30d")
	if n, err := ts.svc.ApplyRetention(); err != nil || n != 1 {
		t.Fatalf("retention redacted %d posts: %v", n, err)
	}
	box := ts.mustCLI(t, "export", crew)
	if strings.Contains(box, "Old words.") || !strings.Contains(box, "This post was removed: "+crew+" keeps posts for 1 month.") || !strings.Contains(box, "New words.") {
		t.Errorf("export after retention:\n%s", box)
	}
	if n, err := ts.svc.ApplyRetention(); err != nil || n != 0 {
		t.Errorf("retention again redacted %d posts: %v", n, err)
	}
}

// TestNothingLingersAfterTheLastUnsubscribe: a member with an app password and read state is
// removed from her only list: nothing the server holds names her any more (her export would
// be empty), and her password no longer works.
func TestNothingLingersAfterTheLastUnsubscribe(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	ts.mustCLI(t, "member", "password", crew, "alice@example.test")
	pw := passwordRE.FindStringSubmatch(text(t, expectSome(t, ts, sink, "alice@example.test", "Password:")))[1]
	var id uint64
	if err := ts.st.Update(func(tx store.Tx) error {
		m, err := tx.Member(crew, "alice@example.test")
		id = m.ID
		if err != nil {
			return err
		}
		return tx.SetFlags(crew, m.ID, 1, store.FlagSeen)
	}); err != nil {
		t.Fatal(err)
	}
	ts.mustCLI(t, "member", "rm", crew, "alice@example.test")
	if passwordWorks(t, ts, "alice@example.test", pw) {
		t.Error("the app password still works")
	}
	if err := ts.st.View(func(tx store.Tx) error {
		d, box, err := lists.MyDataOf(tx, "alice@example.test", time.Now())
		if err != nil {
			return err
		}
		if len(d.Memberships) != 0 || !d.AppPassword.IsZero() || len(d.Waiting) != 0 || len(box) != 0 {
			t.Errorf("what is left of alice: %+v", d)
		}
		n := 0
		if err := tx.FlagsOf(crew, id, func(uint64, byte) error { n++; return nil }); err != nil || n != 0 {
			t.Errorf("her read state is left: %d %v", n, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestPausedMemberIsToldWhyAndResumesInOneClick: alice's server refuses every copy; after
// three hard bounces over eight days delivery to her is paused. Her server takes mail again,
// but the list sends her none; the answer to her next mail says since when and why, with an
// address that resumes; one mail to it and the list's posts reach her again, and later mail no
// longer speaks of a pause.
func TestPausedMemberIsToldWhyAndResumesInOneClick(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	var refuse atomic.Bool
	refuse.Store(true)
	sink.Reject = func(m mailtest.Message) error {
		if m.To[0] == "alice@example.test" && refuse.Load() {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "mailbox full"}
		}
		return nil
	}
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	for i := range 3 {
		if i > 0 {
			ts.clock.Advance(4 * 24 * time.Hour)
		}
		if err := send(t, ts.SMTPAddr, "bob@example.test", []string{crew}, post("bob@example.test", fmt.Sprint("Post ", i), fmt.Sprintf("b%d@example.test", i), "x\r\n")); err != nil {
			t.Fatal(err)
		}
		settle(t, ts)
	}
	if l := members(t, ts); !strings.Contains(l, "paused since") {
		t.Fatalf("alice is not paused after three bounces over eight days:\n%s", l)
	}
	refuse.Store(false)
	if err := send(t, ts.SMTPAddr, "bob@example.test", []string{crew}, post("bob@example.test", "Before", "p1@example.test", "While paused.\r\n")); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	ts.clock.Advance(61 * time.Minute)
	if err := ask(t, ts, "alice@example.test", request, "export\r\n", true); err != nil {
		t.Fatal(err)
	}
	m := expectSome(t, ts, sink, "alice@example.test", "export: your data went to", "has been paused since", "because it bounced", "mailbox full", "mailto:crew+confirm-")
	for _, got := range sink.Messages() {
		if got.To[0] == "alice@example.test" && strings.Contains(text(t, got), "While paused.") {
			t.Fatal("a post reached a paused member")
		}
	}
	confirmFrom(t, ts, m, "alice@example.test")
	expectSome(t, ts, sink, "alice@example.test", "resume: mail from "+crew+" comes to you again.")
	if err := send(t, ts.SMTPAddr, "bob@example.test", []string{crew}, post("bob@example.test", "After", "p2@example.test", "After resuming.\r\n")); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text(t, expectSome(t, ts, sink, "alice@example.test", "After resuming.")), "paused") {
		t.Error("a mail after resuming still speaks of a pause")
	}
}

// TestSettingsByMail: "settings" answers a member with her mode, own posts, the
// conversations she muted with the address that unmutes each, her app password's date and
// how she joined; the unmute address works.
func TestSettingsByMail(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	ts.mustCLI(t, "member", "mode", crew, "alice@example.test", "weekly")
	if err := send(t, ts.SMTPAddr, "bob@example.test", []string{crew}, post("bob@example.test", "Compost", "c1@example.test", "Turn it.\r\n")); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	reply := []byte("From: alice@example.test\r\nTo: crew+mute@" + testDomain + "\r\nSubject: Re: Compost\r\nMessage-ID: <m1@example.test>\r\nIn-Reply-To: <c1@example.test>\r\n\r\nmute\r\n")
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{"crew+mute@" + testDomain}, reply); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	ts.clock.Advance(61 * time.Minute)
	if err := ask(t, ts, "alice@example.test", request, "settings\r\n", true); err != nil {
		t.Fatal(err)
	}
	m := expectSome(t, ts, sink, "alice@example.test", "settings of alice@example.test on "+crew+":", "you get a weekly digest", "your own posts come back to you", `muted: "Compost"; any mail to crew+unmute-`, "a member since", "added by the operator")
	unmute := regexp.MustCompile(`crew\+unmute-[a-z2-7]+@` + regexp.QuoteMeta(testDomain)).FindString(text(t, m))
	if err := ask(t, ts, "alice@example.test", unmute, "", true); err != nil {
		t.Fatal(err)
	}
	settle(t, ts)
	if err := ts.st.View(func(tx store.Tx) error {
		mem, err := tx.Member(crew, "alice@example.test")
		if err != nil {
			return err
		}
		muted, err := tx.Muted(crew, store.Post{Seq: 1, Thread: 1, Origin: 1})
		if err == nil && muted[mem.ID] {
			t.Error("the unmute address of the settings did not unmute")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
