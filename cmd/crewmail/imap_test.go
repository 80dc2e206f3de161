package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"crewmail/internal/mailtest"
	"crewmail/store"
)

// TestIMAPArchiveEndToEnd: a member asks for an app password by mail, logs in with it over
// IMAP, sees the list as a mailbox and fetches the post byte for byte as archived; a new post
// shows up; a removed member cannot log in.
func TestIMAPArchiveEndToEnd(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test", "bob@example.test")
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Archived", "arch@example.test", "Kept for later.\r\n")); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 2)
	if err := ask(t, ts, "bob@example.test", "crew+password@"+testDomain, "", true); err != nil {
		t.Fatal(err)
	}
	m := expect(t, sink, 3, "bob@example.test", "Password:", ts.IMAPAddr[strings.LastIndexByte(ts.IMAPAddr, ':')+1:])
	pw := passwordRE.FindStringSubmatch(text(t, m))[1]

	c, err := imapclient.DialInsecure(ts.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("bob@example.test", pw).Wait(); err != nil {
		t.Fatalf("login with the mailed password: %v", err)
	}
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil || len(boxes) != 1 || boxes[0].Mailbox != "crew" { // the mailbox is named after the list, without the domain
		t.Fatalf("LIST: %+v %v", boxes, err)
	}
	if _, err := c.Select(boxes[0].Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH: %v", err)
	}
	var raw []byte
	if err := ts.st.View(func(tx store.Tx) error {
		_, raw, err = tx.Post(crew, 1)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, b := range msgs[0].BodySection {
		got = b.Bytes
	}
	if !bytes.Equal(got, raw) {
		t.Errorf("the fetched message differs from the archive")
	}
	c.Logout().Wait()

	ts.mustCLI(t, "member", "rm", crew, "bob@example.test")
	c2, err := imapclient.DialInsecure(ts.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Login("bob@example.test", pw).Wait(); err == nil {
		t.Error("a removed member logged in")
	}
}
