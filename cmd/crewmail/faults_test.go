package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crewmail/internal/mailtest"
	"crewmail/store"
)

// TestDiskFull runs the server on a small tmpfs and fills it: posts that no longer fit are
// deferred with a 4xx (the sender retries), nothing acknowledged is lost, the database stays
// sound, and posting works again once there is room. It needs root (to mount the tmpfs).
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	mnt := filepath.Join(dir, "small")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })

	sink := mailtest.NewSink(t)
	cfgPath := testConfig(t, dir, sink.Addr, "")
	text, _ := os.ReadFile(cfgPath)
	text = []byte(strings.Replace(string(text), "data_dir = \""+filepath.Join(dir, "data")+"\"", "data_dir = \""+filepath.Join(mnt, "data")+"\"", 1))
	if err := os.WriteFile(cfgPath, text, 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startTestServer(t, cfgPath)
	ts.mustCLI(t, "list", "create", crew, "-post", "members")
	ts.mustCLI(t, "member", "add", crew, "alice@example.test", "bob@example.test")

	// Fill the disk, leaving a little room.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	if err := os.Truncate(filler, mustSize(t, filler)-(1<<20)); err != nil {
		t.Fatal(err)
	}

	var acked []string
	deferred := 0
	body := strings.Repeat(strings.Repeat("x", 76)+"\r\n", 1500) // about 120 KB
	for i := range 40 {
		id := fmt.Sprintf("full%d@example.test", i)
		err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "Big", id, body))
		switch code := smtpCode(err); {
		case err == nil:
			acked = append(acked, id)
		case strings.HasPrefix(code, "4"):
			deferred++
		default:
			t.Fatalf("post %d with the disk full: %v, want 250 or a 4xx", i, err)
		}
	}
	if deferred == 0 {
		t.Fatalf("all 40 posts fitted in a full disk (%d acknowledged)", len(acked))
	}
	t.Logf("disk full: %d posts acknowledged, %d deferred", len(acked), deferred)

	// Room again: posting works, and every acknowledged post is there.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "After", "after@example.test", "small\r\n")); err != nil {
		t.Fatalf("after freeing space: %v", err)
	}
	arch := ts.mustCLI(t, "archive", "ls", crew, "-json")
	for _, id := range append(acked, "after@example.test") {
		if strings.Count(arch, `"message_id":"`+id+`"`) != 1 {
			t.Errorf("acknowledged post %s is not in the archive once", id)
		}
	}
	ts.stop()
	st, err := store.Open(filepath.Join(mnt, "data"))
	if err != nil {
		t.Fatalf("the database does not open after the disk was full: %v", err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Errorf("the database is damaged: %v", err)
	}
}

func mustSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestSmarthostDownForMinutes: the smarthost does not answer at all for twenty minutes; the
// posts wait in the outbox, retried on schedule, and all go out once it is back.
func TestSmarthostDownForMinutes(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	ts := startTestServer(t, testConfig(t, t.TempDir(), addr, ""))
	ts.mustCLI(t, "list", "create", crew, "-post", "members")
	ts.mustCLI(t, "member", "add", crew, "alice@example.test", "bob@example.test")
	for i := range 3 {
		if err := send(t, ts.SMTPAddr, "alice@example.test", []string{crew}, post("alice@example.test", "While down", fmt.Sprintf("down%d@example.test", i), "x\r\n")); err != nil {
			t.Fatalf("post while the smarthost is down: %v", err)
		}
	}
	// Settled: none under way and none due, so nothing is sent until the clock moves (an
	// attempt still running when the smarthost returns would be a second copy). The refused
	// connection puts the smarthost on hold: rows queued meanwhile wait without an attempt.
	settled := func(rows []store.Delivery) bool {
		for _, d := range rows {
			if d.Leased || !d.Due.After(ts.clock.Now()) {
				return false
			}
		}
		return len(rows) == 6
	}
	ts.waitOutbox(t, "deferred deliveries", settled)
	for range 4 { // twenty minutes of retries against a closed port
		ts.clock.Advance(5 * time.Minute)
		ts.queue.Wake()
		ts.waitOutbox(t, "deferred deliveries", settled)
	}
	sink := mailtest.NewSinkAt(t, addr)
	ts.clock.Advance(time.Hour)
	ts.queue.Wake()
	got := sink.Wait(t, 6)
	if len(got) != 6 {
		t.Errorf("%d copies after the smarthost came back, want 6", len(got))
	}
}
