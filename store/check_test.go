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

// TestDamagedBranchPageRefusedNotPanicking: garbage written over the root page (a branch page)
// of a list's post records made Open panic in a goroutine of bbolt's, killing the process at
// every start. Open refuses it in one sentence; CheckFile says what is wrong; a sound file
// checks clean.
func TestDamagedBranchPageRefusedNotPanicking(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const list = "crew@x.test"
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
	if p, err := CheckFile(dir); err != nil || len(p) > 0 {
		t.Fatalf("CheckFile of a sound database: %v %v", p, err)
	}
	path := filepath.Join(dir, FileName)
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

	for range 2 { // and again: a refusal leaves nothing locked or half open
		_, err = Open(dir)
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
