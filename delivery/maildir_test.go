package delivery_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"crewmail/delivery"
	"crewmail/store"
)

// maildirFiles returns the contents of the files in the sub folder of every recipient's Maildir
// under dir, by "RECIPIENT/NAME".
func maildirFiles(t testing.TB, dir, sub string) map[string][]byte {
	t.Helper()
	boxes, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, box := range boxes {
		entries, err := os.ReadDir(filepath.Join(dir, box.Name(), sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				t.Errorf("%s/%s/%s is not a regular file", box.Name(), sub, e.Name())
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, box.Name(), sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files[box.Name()+"/"+e.Name()] = b
		}
	}
	return files
}

// maildirEntry is the file a Maildir delivery of msg makes: Return-Path and Delivered-To, then
// the message, every line ending with LF as local delivery agents write them.
func maildirEntry(from, to string, msg []byte) []byte {
	head := fmt.Appendf(nil, "Return-Path: <%s>\nDelivered-To: %s\n", from, to)
	return append(head, bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))...)
}

func TestMaildir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "Maildir")
	md, err := delivery.NewMaildir(dir, "box.crew.test")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("NewMaildir did not create %s: %v", dir, err)
	}
	sends := []struct{ from, to string }{
		{"crew-bounces@crew.test", "ann@example.test"},
		{"", "bob@example.test"}, // null sender
		{"crew-bounces@crew.test", "jörg@bücher.example"},
	}
	var want [][]byte
	for i, s := range sends {
		msg := fmt.Appendf(nil, "Subject: %d\r\n\r\nbody %d\r\n", i, i)
		if err := sendOnce(md, s.from, s.to, msg); err != nil {
			t.Fatalf("Send: %v", err)
		}
		want = append(want, maildirEntry(s.from, s.to, msg))
	}
	files := maildirFiles(t, dir, "new")
	var got [][]byte
	for name, b := range files {
		if !strings.HasSuffix(name, ".box.crew.test") {
			t.Errorf("file name %q does not end with the host name", name)
		}
		// Each recipient's mail is in a Maildir of its own, named after the address.
		box, _, _ := strings.Cut(name, "/")
		if !bytes.Contains(b, []byte("\nDelivered-To: "+box+"\n")) {
			t.Errorf("%s is not the mail of %s:\n%s", name, box, b)
		}
		got = append(got, b)
	}
	slices.SortFunc(got, bytes.Compare)
	slices.SortFunc(want, bytes.Compare)
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Errorf("new/ holds\n%q\nwant\n%q", got, want)
	}
	if left := maildirFiles(t, dir, "tmp"); len(left) != 0 {
		t.Errorf("tmp/ not empty: %v", slices.Collect(mapKeys(left)))
	}
	if cur := maildirFiles(t, dir, "cur"); len(cur) != 0 {
		t.Errorf("cur/ not empty")
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestMaildirSlashInHostname: the host name goes into file names, so a slash must not make a
// path of it.
func TestMaildirSlashInHostname(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	md, err := delivery.NewMaildir(dir, "odd/host")
	if err != nil {
		t.Fatal(err)
	}
	if err := sendOnce(md, "a@crew.test", "b@example.test", testMsg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	files := maildirFiles(t, dir, "new")
	if len(files) != 1 {
		t.Fatalf("new/ holds %d entries, want 1 file", len(files))
	}
	for name := range files {
		if name = strings.TrimPrefix(name, "b@example.test/"); strings.Contains(name, "/") || !strings.HasSuffix(name, "odd_host") {
			t.Errorf("file name %q, want the host name with / replaced", name)
		}
	}
}

// TestMaildirConcurrentSends: parallel workers never overwrite each other's files.
func TestMaildirConcurrentSends(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	md, err := delivery.NewMaildir(dir, "box")
	if err != nil {
		t.Fatal(err)
	}
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- sendOnce(md, "a@crew.test", fmt.Sprintf("m%d@example.test", i), testMsg)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Send: %v", err)
		}
	}
	files := maildirFiles(t, dir, "new")
	if len(files) != n {
		t.Fatalf("new/ holds %d files, want %d", len(files), n)
	}
	seen := map[string]bool{}
	for _, b := range files {
		seen[string(b)] = true
	}
	if len(seen) != n {
		t.Errorf("new/ holds %d distinct messages, want %d", len(seen), n)
	}
	if left := maildirFiles(t, dir, "tmp"); len(left) != 0 {
		t.Errorf("tmp/ not empty")
	}
}

// TestMaildirGone: a Maildir folder that disappeared is an error, and is not made again.
func TestMaildirGone(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "Maildir")
	md, err := delivery.NewMaildir(dir, "box")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := sendOnce(md, "a@crew.test", "b@example.test", testMsg); err == nil {
		t.Fatal("Send into a Maildir folder that is gone succeeded")
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("the failed send made %s again", dir)
	}
}

// TestQueueToMaildir: the trial setup end to end: the queue drains the outbox into a Maildir.
func TestQueueToMaildir(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	dir := t.TempDir()
	md, err := delivery.NewMaildir(dir, "box")
	if err != nil {
		t.Fatal(err)
	}
	var ds []store.Delivery
	for i := range 3 {
		ds = append(ds, store.Delivery{List: "crew", Seq: uint64(i + 1), From: "crew-bounces@crew.test",
			To: fmt.Sprintf("m%d@example.test", i), Created: t0.Add(-time.Minute)})
	}
	ds = enqueue(t, st, ds...)
	q, _ := newQueue(t, st, composeMessage, md, delivery.Config{Workers: 2})
	runQueue(t, q)
	waitOutbox(t, st, "an empty outbox", empty)
	files := maildirFiles(t, dir, "new")
	have := map[string]bool{}
	for _, b := range files {
		have[string(b)] = true
	}
	for _, d := range ds {
		if !have[string(maildirEntry(d.From, d.To, messageFor(d)))] {
			t.Errorf("no file for delivery %d to %s", d.ID, d.To)
		}
		if _, err := os.Stat(filepath.Join(dir, d.To, "new")); err != nil {
			t.Errorf("no Maildir of its own for %s: %v", d.To, err)
		}
	}
	if len(files) != len(ds) {
		t.Errorf("new/ holds %d files, want %d", len(files), len(ds))
	}
}
