package store

import (
	"fmt"
	"testing"

	"crewmail/internal/vocab"
)

// BenchmarkChangeAddress moves a member of a list with 10,000 archived posts (a tenth hers)
// from one address to another and back: the move reads every post record of every list for
// the authorship. It prints the time one move takes (ns/op) with the archive's size.
func BenchmarkChangeAddress(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const posts = 10_000
	if err := s.Update(func(tx Tx) error {
		if err := tx.CreateList(List{Address: "crew@x.test"}); err != nil {
			return err
		}
		if _, err := tx.AddMember("crew@x.test", Member{Address: "a@x.test", Mode: vocab.Each}); err != nil {
			return err
		}
		for i := range posts {
			from := "other@x.test"
			if i%10 == 0 {
				from = "a@x.test"
			}
			if _, err := tx.AppendPost("crew@x.test", Post{MessageID: fmt.Sprintf("%d@x", i), From: from}, []byte("Subject: s\r\n\r\nwords\r\n")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	addrs := [2]string{"a@x.test", "b@x.test"}
	b.ResetTimer()
	for i := range b.N {
		from, to := addrs[i%2], addrs[(i+1)%2]
		if err := s.Update(func(tx Tx) error {
			_, err := tx.(*boltTx).ChangeAddress(from, to)
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(posts, "posts")
}

// BenchmarkRedactPost redacts a post of a 10,000-post list to a tombstone (re-indexing it
// for search) and gives it back, one commit each.
func BenchmarkRedactPost(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	raw := []byte("From: Ann <a@x.test>\r\nSubject: seeds\r\n\r\nmarigolds and beans\r\n")
	if err := s.Update(func(tx Tx) error {
		if err := tx.CreateList(List{Address: "crew@x.test"}); err != nil {
			return err
		}
		for i := range 10_000 {
			p, err := tx.AppendPost("crew@x.test", Post{MessageID: fmt.Sprintf("%d@x", i), From: "a@x.test"}, raw)
			if err != nil {
				return err
			}
			if err := tx.IndexPost("crew@x.test", p.Seq, NewSearchDoc(raw).For(p)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	tomb := []byte("From: Former member <f@invalid.x.test>\r\nSubject: (removed)\r\n\r\nremoved\r\n")
	b.ResetTimer()
	for i := range b.N {
		seq := uint64(i%10_000) + 1
		if err := s.Update(func(tx Tx) error {
			return tx.(*boltTx).RedactPost("crew@x.test", seq, Post{From: "f@invalid.x.test", Redacted: RedactRemoved}, tomb)
		}); err != nil {
			b.Fatal(err)
		}
	}
}
