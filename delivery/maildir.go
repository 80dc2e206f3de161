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

// Maildir writes each message into a Maildir folder instead of sending it: the trial setup's
// transport, so nothing leaves the machine. Each file starts with Return-Path and Delivered-To
// and ends its lines with LF, as a local delivery agent writes them.
type Maildir struct {
	Dir      string
	Hostname string
}

// NewMaildir creates dir's tmp, new and cur folders.
func NewMaildir(dir, hostname string) (*Maildir, error) {
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("maildir %s: %w", dir, err)
		}
	}
	return &Maildir{Dir: dir, Hostname: strings.ReplaceAll(hostname, "/", "_")}, nil
}

// Send writes msg to tmp/, fsyncs it and moves it into new/, the Maildir way of making a
// message appear whole or not at all.
func (m *Maildir) Send(_ context.Context, from, to string, msg []byte) error {
	r := make([]byte, 8)
	_, _ = rand.Read(r)
	name := fmt.Sprintf("%d.%s.%s", time.Now().UnixNano(), hex.EncodeToString(r), m.Hostname)
	tmp := filepath.Join(m.Dir, "tmp", name)
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
		err = os.Rename(tmp, filepath.Join(m.Dir, "new", name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("maildir: %w", err)
	}
	// The rename is durable only once the folder is synced: until then a crash could lose a
	// message the outbox already counts as delivered.
	if err := syncDir(filepath.Join(m.Dir, "new")); err != nil {
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
