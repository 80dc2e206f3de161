package delivery

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Maildir writes each message into a Maildir of its recipient, Dir/ADDRESS/, instead of sending
// it: the trial setup's transport, so nothing leaves the machine and each member's mail can be
// read apart (Dir/alice@example.org/new/). Each file starts with Return-Path and Delivered-To
// and ends its lines with LF, as a local delivery agent writes them.
type Maildir struct {
	Dir      string
	Hostname string
}

// NewMaildir creates the folder dir, under which each recipient's Maildir is made at its first
// message.
func NewMaildir(dir, hostname string) (*Maildir, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("maildir %s: %w", dir, err)
	}
	return &Maildir{Dir: dir, Hostname: strings.ReplaceAll(hostname, "/", "_")}, nil
}

// box is the Maildir of recipient to under m.Dir: its address, lowercase, with nothing in it
// that could lead out of m.Dir.
func (m *Maildir) box(to string) string {
	name := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r < ' ' {
			return '_'
		}
		return r
	}, strings.ToLower(to))
	if name == "" || strings.HasPrefix(name, ".") {
		name = "_" + name
	}
	return filepath.Join(m.Dir, name)
}

// Send writes msg to the recipient's tmp/, fsyncs it and moves it into new/, the Maildir way of
// making a message appear whole or not at all.
func (m *Maildir) Send(_ context.Context, from, to string, msg []byte) error {
	// The folder itself must be there: one that disappeared (a disk not mounted) is not
	// silently made again.
	if _, err := os.Stat(m.Dir); err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	dir := m.box(to)
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return fmt.Errorf("maildir: %w", err)
		}
	}
	r := make([]byte, 8)
	_, _ = rand.Read(r)
	name := fmt.Sprintf("%d.%s.%s", time.Now().UnixNano(), hex.EncodeToString(r), m.Hostname)
	tmp := filepath.Join(dir, "tmp", name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	// Maildir files end lines with LF, as local delivery agents write them.
	_, err = fmt.Fprintf(f, "Return-Path: <%s>\nDelivered-To: %s\n", from, to)
	if err == nil {
		_, err = f.Write(bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n")))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, "new", name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("maildir: %w", err)
	}
	// The rename is durable only once the folder is synced: until then a crash could lose a
	// message the outbox already counts as delivered.
	if err := syncDir(filepath.Join(dir, "new")); err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
