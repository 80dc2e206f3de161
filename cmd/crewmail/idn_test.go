package main

import (
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"

	"crewmail/internal/mailtest"
)

// TestMemberWithInternationalDomainReadsTheArchive: a member added as Jürgen@Bücher.example
// gets the app password at the address on file and logs in to the archive with the address
// written as people write it, and as DNS spells it.
func TestMemberWithInternationalDomainReadsTheArchive(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "Jürgen@Bücher.example")
	ts.mustCLI(t, "member", "password", crew, "Jürgen@Bücher.example")
	m := expect(t, sink, 1, "jürgen@xn--bcher-kva.example", "Password:")
	pw := passwordRE.FindStringSubmatch(text(t, m))[1]
	for _, user := range []string{"Jürgen@Bücher.example", "jürgen@bücher.example", "jürgen@xn--bcher-kva.example"} {
		c, err := imapclient.DialInsecure(ts.IMAPAddr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login(user, pw).Wait(); err != nil {
			t.Errorf("login as %s: %v", user, err)
		} else if boxes, err := c.List("", "*", nil).Collect(); err != nil || len(boxes) != 1 || boxes[0].Mailbox != "crew" {
			t.Errorf("LIST after login as %s: %+v %v", user, boxes, err)
		}
		c.Close()
	}
}
