package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// damagedStore makes a database with 3000 posts in list and writes garbage over the root page
// (a branch page) of the list's post records. legacy: the file is left without its free list
// on disk, as crewmail wrote files before it kept it there.
func damagedStore(t *testing.T, list string, legacy bool) string {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(func(tx Tx) error {
		if err := tx.CreateList(List{Address: list}); err != nil {
			return err
		}
		for i := range 3000 {
			if _, err := tx.AppendPost(list, Post{MessageID: fmt.Sprintf("m%d@x.test", i), Subject: "a post"}, []byte("x")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := s.Problems(); err != nil || len(p) > 0 {
		t.Fatalf("a sound database has problems: %v %v", p, err)
	}
	var root uint64
	var pageSize int
	_ = s.db.View(func(tx *bolt.Tx) error {
		root = uint64(tx.Bucket(bucketLists).Bucket([]byte(list)).Bucket(subPosts).RootPage())
		pageSize = tx.DB().Info().PageSize
		return nil
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	if legacy {
		db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put([]byte("legacy"), []byte("1")) }); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if onDisk, err := freelistOnDisk(path); err != nil || onDisk == legacy {
		t.Fatalf("free list on disk: %v %v, legacy %v", onDisk, err, legacy)
	}
	if p, err := CheckFile(dir); err != nil || len(p) > 0 {
		t.Fatalf("CheckFile of a sound database: %v %v", p, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := data[int(root)*pageSize : int(root+1)*pageSize]
	if flags := binary.LittleEndian.Uint16(page[8:]); flags != 0x01 {
		t.Fatalf("page %d is not a branch page (flags %x)", root, flags)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range page {
		page[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDamagedBranchPageRefusedNotPanicking: garbage written over the root page (a branch page)
// of a list's post records made Open panic in a goroutine of bbolt's, killing the process at
// every start, when bbolt rebuilt the free list (files without it on disk). Open refuses such
// a file in one sentence; CheckFile says what is wrong; a sound file checks clean.
func TestDamagedBranchPageRefusedNotPanicking(t *testing.T) {
	dir := damagedStore(t, "crew@x.test", true)
	path := filepath.Join(dir, FileName)
	for range 2 { // and again: a refusal leaves nothing locked or half open
		_, err := Open(dir)
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path+" is damaged (") || !strings.Contains(err.Error(), "crewmail check-db") || strings.Contains(err.Error(), "\n") {
			t.Fatalf("Open of a damaged database: %v", err)
		}
	}
	problems, err := CheckFile(dir)
	if err != nil || len(problems) == 0 {
		t.Fatalf("CheckFile of a damaged database: %v %v", problems, err)
	}
	t.Logf("CheckFile: %v", problems)
}

// TestDamagedPageIsAnErrorOfTheRead: a file with its free list on disk opens without reading
// its posts' pages (a million posts must not cost a second at every start), so a damaged
// page shows when it is read: as an error of that read (ErrDamaged, naming check-db) and of
// writes that meet it, and the store goes on answering what it can still read.
func TestDamagedPageIsAnErrorOfTheRead(t *testing.T) {
	const list = "crew@x.test"
	dir := damagedStore(t, list, false)
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open of a database whose damage is in its posts: %v", err)
	}
	defer s.Close()
	err = s.View(func(tx Tx) error {
		return tx.Posts(list, func(Post) error { return nil })
	})
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "crewmail check-db") {
		t.Fatalf("reading the damaged posts: %v", err)
	}
	err = s.Update(func(tx Tx) error {
		_, err := tx.AppendPost(list, Post{MessageID: "new@x.test"}, []byte("x"))
		return err
	})
	if err == nil {
		t.Fatal("appending to the damaged posts succeeded")
	}
	if err := s.View(func(tx Tx) error { _, err := tx.List(list); return err }); err != nil {
		t.Errorf("the list's record, which is sound: %v", err)
	}
	if problems, err := s.Problems(); err != nil || len(problems) == 0 {
		t.Errorf("Problems of the open, damaged database: %v %v", problems, err)
	}
}
