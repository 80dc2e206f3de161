package store

import (
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"

	"crewmail/internal/searchq"
)

// TestMigrationToSchema8GivesAnIncompleteIndex: a list archived before search gets an empty
// index that says it is not complete, so IMAP reads the archive as before, until every post
// is indexed (crewmail reindex).
func TestMigrationToSchema8GivesAnIncompleteIndex(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const list = "old@x.test"
	if err := s.Update(func(tx Tx) error {
		if err := tx.CreateList(List{Address: list}); err != nil {
			return err
		}
		for i := 1; i <= 3; i++ {
			if _, err := tx.AppendPost(list, Post{MessageID: fmt.Sprintf("%d@x", i)}, []byte("x")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Make it a schema-7 file: no search buckets.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		l := tx.Bucket(bucketLists).Bucket([]byte(list))
		for _, name := range searchSubs {
			if err := l.DeleteBucket(name); err != nil {
				return err
			}
		}
		if err := l.Delete(keySearchCount); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyVersion, u64(7))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	indexed := func() bool {
		var ok bool
		if err := s.View(func(tx Tx) (err error) { ok, err = tx.SearchIndexed(list); return err }); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if indexed() {
		t.Error("the migrated index says it is complete")
	}
	if err := s.View(func(tx Tx) error {
		_, ok, err := tx.SearchSubstrings(list, "hello")
		if ok {
			t.Error("an incomplete index narrows IMAP's search")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx Tx) error {
		for seq := uint64(1); seq <= 3; seq++ {
			if err := tx.IndexPost(list, seq, SearchDoc{Own: fmt.Sprintf("hello %d", seq)}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !indexed() {
		t.Error("the index is not complete with every post indexed")
	}
	q, _ := searchq.Parse("hello")
	n := 0
	if err := s.View(func(tx Tx) error {
		return tx.SearchPosts(list, q, 0, func(Hit) error { n++; return nil })
	}); err != nil || n != 3 {
		t.Errorf("found %d posts, %v", n, err)
	}
}

// TestCopyCarriesTheSearchIndex: a file whose list has 600 indexed posts (a segment written,
// the rest waiting, one indexed again) and a list whose index is not complete, copied into a
// new file: the copy answers every search as the original does, and says its indexes are
// as complete as they were.
func TestCopyCarriesTheSearchIndex(t *testing.T) {
	orig, err := OpenFile(t.TempDir() + "/orig.db")
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	const list, partial = "crew@x.test", "partial@x.test"
	if err := orig.Update(func(tx Tx) error {
		for _, l := range []string{list, partial} {
			if err := tx.CreateList(List{Address: l}); err != nil {
				return err
			}
		}
		for i := 1; i <= 600; i++ {
			p, err := tx.AppendPost(list, Post{MessageID: fmt.Sprintf("%d@x", i)}, []byte("x"))
			if err != nil {
				return err
			}
			d := SearchDoc{Own: fmt.Sprintf("Tea number%d", i), Subject: "Café", Attachment: i%7 == 0, Other: fmt.Sprintf("mx%d", i)}
			if err := tx.IndexPost(list, p.Seq, d.For(p)); err != nil {
				return err
			}
		}
		if _, err := tx.AppendPost(partial, Post{MessageID: "old@x"}, []byte("x")); err != nil {
			return err
		}
		return tx.IndexPost(list, 5, SearchDoc{Own: "reindexed scone", Thread: 1})
	}); err != nil {
		t.Fatal(err)
	}
	answers := func(s *Store) []string {
		var out []string
		if err := s.View(func(tx Tx) error {
			for _, l := range []string{list, partial} {
				ok, err := tx.SearchIndexed(l)
				if err != nil {
					return err
				}
				out = append(out, fmt.Sprintf("%s complete %v", l, ok))
			}
			for _, query := range []string{"tea", "scone", "has:attachment cafe", "number599", "-tea"} {
				q, err := searchq.Parse(query)
				if err != nil {
					return err
				}
				if err := tx.SearchPosts(list, q, 0, func(h Hit) error {
					out = append(out, fmt.Sprintf("%s: %d %d %q", query, h.Seq, h.Thread, h.Lines))
					return nil
				}); err != nil {
					return err
				}
			}
			seqs, ok, err := tx.SearchSubstrings(list, "mx59")
			out = append(out, fmt.Sprintf("substrings %v %v", seqs, ok))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := answers(orig)
	if len(want) < 600 {
		t.Fatalf("the original answers %d lines", len(want))
	}
	cp, err := OpenFile(t.TempDir() + "/copy.db")
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	sum, err := Copy(orig, cp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts[RecSearchDoc] != 600 {
		t.Errorf("%d search documents copied, want 600", sum.Counts[RecSearchDoc])
	}
	got := answers(cp)
	if len(got) != len(want) {
		t.Fatalf("the copy answers %d lines, the original %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("the copy answers %q, the original %q", got[i], want[i])
		}
	}
}
