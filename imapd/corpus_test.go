package imapd

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"crewmail/internal/mailtest"
	"crewmail/store"
)

// TestCorpusThroughIMAP serves every message of the real-mail corpus, broken ones included,
// and reads them back with every FETCH item: the bytes are the archive's, and no message breaks
// the connection (the library panics on some structures it parsed itself).
func TestCorpusThroughIMAP(t *testing.T) {
	files := mailtest.Corpus(t, "mime", "malformed", "threads")
	e := newEnv(t)
	const list = "corpus@lists.example.test"
	var raws [][]byte
	e.update(t, func(tx store.Tx) error {
		if err := tx.CreateList(store.List{Address: list, Created: created}); err != nil {
			return err
		}
		_, err := tx.AddMember(list, store.Member{Address: carol, Mode: "each"})
		return err
	})
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		raw := mailtest.SMTPForm(b)
		raws = append(raws, raw)
		e.update(t, func(tx store.Tx) error {
			// Corpus Message-IDs repeat or are missing; the archive index needs one each.
			_, err := tx.AppendPost(list, store.Post{MessageID: fmt.Sprintf("corpus-%d", i), Received: time.Now()}, raw)
			return err
		})
	}
	c := e.login(t, carol)
	if _, err := c.Select(list, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(allSeq(), &imap.FetchOptions{
		UID: true, Envelope: true, RFC822Size: true, InternalDate: true, Flags: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection: []*imap.FetchItemBodySection{
			whole,
			{Part: []int{1}, Peek: true},
			{Part: []int{2, 1}, Peek: true},
			{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject", "From"}, Peek: true},
			{Specifier: imap.PartSpecifierText, Peek: true},
			{Part: []int{1}, Specifier: imap.PartSpecifierMIME, Peek: true},
		},
		BinarySection: []*imap.FetchItemBinarySection{{Part: []int{1}, Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatalf("FETCH 1:* of the corpus: %v", err)
	}
	if len(msgs) != len(raws) {
		t.Fatalf("FETCH 1:* gave %d messages, want %d", len(msgs), len(raws))
	}
	for i, m := range msgs {
		if !bytes.Equal(m.FindBodySection(whole), raws[i]) || m.RFC822Size != int64(len(raws[i])) {
			t.Errorf("%s: BODY[] or RFC822.SIZE differs from the archive", files[i])
		}
	}
	for _, text := range []string{"the", "zzzz-not-there", "Käse"} {
		if _, err := c.UIDSearch(&imap.SearchCriteria{Text: []string{text}}, nil).Wait(); err != nil {
			t.Errorf("UID SEARCH TEXT %s: %v", text, err)
		}
	}
	if err := c.Noop().Wait(); err != nil {
		t.Errorf("the connection did not survive the corpus: %v", err)
	}
}
