package imapd

import (
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"crewmail/store"
)

// TestMailboxNamesClientsOpen: LIST names a list's mailbox after the local part of its address,
// with no "." or "/" (mutt takes a dot for a hierarchy delimiter and could open no
// "crew@lists.example.test"); two lists of a member that share a local part get their domain
// after it; the address, the name clients were given before, still opens the mailbox with
// SELECT, EXAMINE and STATUS.
func TestMailboxNamesClientsOpen(t *testing.T) {
	e := newEnv(t)
	e.update(t, func(tx store.Tx) error {
		for _, l := range []string{"garden.crew@lists.example.test", "crew@lists.other.test"} {
			if err := tx.CreateList(store.List{Address: l, Created: created}); err != nil {
				return err
			}
			if _, err := tx.AddMember(l, store.Member{Address: carol, Mode: "each", Added: created}); err != nil {
				return err
			}
		}
		return nil
	})
	c := e.login(t, carol)
	want := []string{"crew-lists-example-test", "crew-lists-other-test", "garden-crew", "other"}
	got := listNames(t, c)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("LIST for carol: %q, want %q", got, want)
	}
	for _, name := range got {
		if strings.ContainsAny(name, "./") {
			t.Errorf("mailbox name %q holds a dot or a slash", name)
		}
	}
	// Alice, on crew only, gets the short name.
	if got := listNames(t, e.login(t, alice)); !slices.Equal(got, []string{"crew"}) {
		t.Errorf("LIST for alice: %q", got)
	}

	sel, err := c.Select("crew-lists-example-test", nil).Wait()
	if err != nil || sel.NumMessages != uint32(len(crewPosts)) {
		t.Fatalf("SELECT crew-lists-example-test: %v %+v", err, sel)
	}
	// The old, address-shaped names keep working.
	for _, old := range []string{crew, "Crew@Lists.Example.Test"} {
		sel, err := c.Select(old, nil).Wait()
		if err != nil || sel.NumMessages != uint32(len(crewPosts)) {
			t.Errorf("SELECT %s: %v %+v", old, err, sel)
		}
	}
	if ex, err := c.Select(other, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil || ex.NumMessages != uint32(len(otherPosts)) {
		t.Errorf("EXAMINE %s: %v %+v", other, err, ex)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"garden-crew", "garden.crew@lists.example.test"} {
		st, err := c.Status(name, nil).Wait()
		if err != nil || st.Mailbox != name {
			t.Errorf("STATUS %s: %v %+v", name, err, st)
		}
	}
	// Bob is not on crew: neither of its names opens it for him.
	b := e.login(t, bob)
	for _, name := range []string{"crew", crew} {
		if _, err := b.Select(name, nil).Wait(); err == nil {
			t.Errorf("bob opened %s", name)
		}
	}
}
