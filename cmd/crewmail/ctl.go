package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"crewmail/config"
)

// The control socket lets admin commands reach a running server, which alone may open the
// database. One request per connection: a JSON line with the command's arguments; the answer
// is a stream of JSON lines, each with some of what the command prints (so long commands
// stream their output and progress), the last with its exit status.

type ctlRequest struct {
	Args []string `json:"args"`
	// TTY: the caller's stderr is a terminal, so long commands show progress there.
	TTY bool `json:"tty,omitempty"`
}

type ctlFrame struct {
	Stdout []byte `json:"stdout,omitempty"` // bytes, not text: an export is whatever the mail was
	Stderr []byte `json:"stderr,omitempty"`
	Code   *int   `json:"code,omitempty"` // set in the last frame
}

// frameWriter sends what is written to it as frames of one kind.
type frameWriter struct {
	mu     *sync.Mutex
	conn   net.Conn
	stderr bool
}

func (w frameWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f := ctlFrame{Stdout: p}
	if w.stderr {
		f = ctlFrame{Stderr: p}
	}
	_ = w.conn.SetWriteDeadline(time.Now().Add(time.Minute))
	if err := json.NewEncoder(w.conn).Encode(f); err != nil {
		return 0, err
	}
	return len(p), nil
}

func ctlPath(cfg *config.Config) string { return filepath.Join(cfg.DataDir, "crewmail.sock") }

// ctlCall runs args on the server listening at path. ok is false when no server answers there.
func ctlCall(path string, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return 0, false
	}
	defer conn.Close()
	if err := json.NewEncoder(conn).Encode(ctlRequest{Args: args, TTY: isTerminal(stderr)}); err != nil {
		fmt.Fprintf(stderr, "crewmail: talk to the server at %s: %v\n", path, err)
		return exitError, true
	}
	dec := json.NewDecoder(bufio.NewReader(conn))
	for {
		var f ctlFrame
		if err := dec.Decode(&f); err != nil {
			fmt.Fprintf(stderr, "crewmail: the server at %s stopped answering: %v\n", path, err)
			return exitError, true
		}
		stdout.Write(f.Stdout)
		stderr.Write(f.Stderr)
		if f.Code != nil {
			return *f.Code, true
		}
	}
}

// ctlServer answers admin commands on the control socket.
type ctlServer struct {
	ln  net.Listener
	b   *backend
	log *slog.Logger
}

// listenCtl makes the control socket, readable by the server's user only. A socket left by a
// server that crashed is removed: we hold the database lock, so no other server is using it.
func listenCtl(path string, b *backend, log *slog.Logger) (*ctlServer, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove old control socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return &ctlServer{ln: ln, b: b, log: log}, nil
}

func (c *ctlServer) serve() {
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		go c.handle(conn)
	}
}

func (c *ctlServer) handle(conn net.Conn) {
	defer conn.Close()
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("control command panicked", "panic", r)
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	var req ctlRequest
	if err := json.NewDecoder(io.LimitReader(conn, 1<<20)).Decode(&req); err != nil || len(req.Args) == 0 {
		return
	}
	var mu sync.Mutex
	out, errOut := frameWriter{&mu, conn, false}, frameWriter{&mu, conn, true}
	b := *c.b
	b.progress = nil
	if req.TTY {
		b.progress = errOut
	}
	code := execAdmin(req.Args, func() (*backend, error) { return &b, nil }, out, errOut)
	c.log.Info("control command", "args", req.Args, "code", code)
	mu.Lock()
	defer mu.Unlock()
	_ = json.NewEncoder(conn).Encode(ctlFrame{Code: &code})
}

func (c *ctlServer) close() error {
	err := c.ln.Close()
	return err
}

// isTerminal reports whether w is a terminal (a character device), where progress is shown.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
