package imapd

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"

	"crewmail/internal/mailtest"
	"crewmail/store"
)

// TestSearchTextThroughTheIndexMatchesTheScan: over the real-mail corpus, UID SEARCH TEXT and
// BODY answered with the search index give exactly the UIDs that reading every message gives
// (the index emptied, as before there was one): for words, pieces of words, header values,
// accented and non-Latin text, and pieces cut out of the messages themselves.
func TestSearchTextThroughTheIndexMatchesTheScan(t *testing.T) {
	files := mailtest.Corpus(t, "mime", "malformed", "threads")
	e := newEnv(t)
	const list = "corpus@lists.example.test"
	e.update(t, func(tx store.Tx) error {
		if err := tx.CreateList(store.List{Address: list, Created: created}); err != nil {
			return err
		}
		_, err := tx.AddMember(list, store.Member{Address: carol, Mode: "each"})
		return err
	})
	patterns := []string{"the", "The", "ello", "patch", "PATCH v2", "notmuch", "Message-ID", "multipart", "Content-Type: text",
		"utf-8", "Käse", "café", "Привет", "日本", "ü", "zzzz-not-there", "boundary", "dkim", "signed-off-by", "2010", "@", "...", "re:", "a b"}
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		raw := mailtest.SMTPForm(b)
		doc := store.NewSearchDoc(raw)
		e.update(t, func(tx store.Tx) error {
			p, err := tx.AppendPost(list, store.Post{MessageID: fmt.Sprintf("corpus-%d", i), Received: time.Now()}, raw)
			if err != nil {
				return err
			}
			return tx.IndexPost(list, p.Seq, doc.For(p))
		})
		// A piece of every fifth message, wherever it falls (header, body, encoded text).
		if i%5 == 0 && len(raw) > 40 {
			at := len(raw) / 3
			for at < len(raw) && !utf8.RuneStart(raw[at]) {
				at++
			}
			piece := strings.ToValidUTF8(string(raw[at:min(at+9, len(raw))]), "")
			if piece = strings.TrimSpace(strings.NewReplacer("\r", " ", "\n", " ", `"`, " ", `\`, " ").Replace(piece)); piece != "" {
				patterns = append(patterns, piece)
			}
		}
	}
	c := e.login(t, carol)
	if _, err := c.Select(list, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	searches := func() [][]imap.UID {
		var out [][]imap.UID
		for _, p := range patterns {
			for _, cr := range []*imap.SearchCriteria{
				{Text: []string{p}},
				{Body: []string{p}},
				{Text: []string{p}, Not: []imap.SearchCriteria{{Body: []string{"the"}}}},
			} {
				data, err := c.UIDSearch(cr, nil).Wait()
				if err != nil {
					t.Fatalf("UID SEARCH %+v: %v", cr, err)
				}
				out = append(out, data.AllUIDs())
			}
		}
		return out
	}
	narrowed := 0
	e.update(t, func(tx store.Tx) error {
		narrowed = 0
		for _, p := range patterns {
			if _, ok, err := tx.SearchSubstrings(list, p); err != nil {
				return err
			} else if ok {
				narrowed++
			}
		}
		return nil
	})
	if narrowed < len(patterns)*2/3 {
		t.Errorf("the index narrowed only %d of %d searches", narrowed, len(patterns))
	}
	withIndex := searches()
	e.update(t, func(tx store.Tx) error { return tx.ClearSearch(list) })
	scanned := searches()
	found := 0
	for i := range scanned {
		if len(scanned[i]) > 0 {
			found++
		}
		if !reflect.DeepEqual(withIndex[i], scanned[i]) {
			t.Errorf("search %d (%q): the index gives %v, reading every message %v", i, patterns[i/3], withIndex[i], scanned[i])
		}
	}
	if found < len(scanned)/3 {
		t.Errorf("only %d of %d searches found anything: the test searches for too little", found, len(scanned))
	}
	t.Logf("%d messages, %d searches (%d narrowed by the index), %d found something", len(files), len(scanned), narrowed*3, found)
}
