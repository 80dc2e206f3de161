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
