package store

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRestoredBackupGetsItsRedactionsAgain: a backup made before a redaction, put back in place
// of the database, has the redaction applied again when it is opened (the journal beside it);
// an entry for a list created again at the same address, or a post whose Message-ID is not the
// one redacted, is left alone.
func TestRestoredBackupGetsItsRedactionsAgain(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var l List
	if err := s.Update(func(tx Tx) error {
		if err := tx.CreateList(List{Address: "crew@x.test"}); err != nil {
			return err
		}
		for _, id := range []string{"1@x", "2@x"} {
			if _, err := tx.AppendPost("crew@x.test", Post{MessageID: id, From: "ann@x.test"}, []byte("Subject: s\r\n\r\nwords of "+id+"\r\n")); err != nil {
				return err
			}
		}
		l, err = tx.List("crew@x.test")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	if _, err := s.Backup(backup); err != nil {
		t.Fatal(err)
	}
	tomb := []byte("Subject: s\r\n\r\nremoved at the author's request\r\n")
	for _, r := range []Redaction{
		{List: "crew@x.test", Incarnation: l.Incarnation, Seq: 1, MessageID: "1@x", Post: Post{From: "ann@x.test", Redacted: RedactRemoved}, Raw: tomb},
		{List: "crew@x.test", Incarnation: l.Incarnation + 1, Seq: 2, MessageID: "2@x", Post: Post{Redacted: RedactRemoved}, Raw: tomb},
		{List: "crew@x.test", Incarnation: l.Incarnation, Seq: 2, MessageID: "other@x", Post: Post{Redacted: RedactRemoved}, Raw: tomb},
	} {
		if err := s.Journal(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Update(func(tx Tx) error {
		return tx.(*boltTx).RedactPost("crew@x.test", 1, Post{From: "ann@x.test", Redacted: RedactRemoved}, tomb)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), data, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.View(func(tx Tx) error {
		p, raw, err := tx.Post("crew@x.test", 1)
		if err != nil || string(raw) != string(tomb) || p.Redacted != RedactRemoved {
			t.Errorf("post 1 after the restore: %+v %q %v", p, raw, err)
		}
		p, raw, err = tx.Post("crew@x.test", 2)
		if err != nil || p.Redacted != "" || string(raw) != "Subject: s\r\n\r\nwords of 2@x\r\n" {
			t.Errorf("post 2 after the restore: %+v %q %v", p, raw, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
