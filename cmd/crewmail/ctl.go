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
// stream their output and progress), the last with its exit status. A caller that asks for
// raw frames (every caller of this version does) gets the printed bytes after their frame's
// line instead of inside it, in base64: `archive ls` of a million posts is 300 MB, which
// JSON-encoding and decoding slowed to half its pace.

type ctlRequest struct {
	Args []string `json:"args"`
	// TTY: the caller's stderr is a terminal, so long commands show progress there.
	TTY bool `json:"tty,omitempty"`
	// Raw: the caller reads raw frames (ctlFrame.Raw).
	Raw bool `json:"raw,omitempty"`
}

type ctlFrame struct {
	Stdout []byte `json:"stdout,omitempty"` // bytes, not text: an export is whatever the mail was
	Stderr []byte `json:"stderr,omitempty"`
	Code   *int   `json:"code,omitempty"` // set in the last frame
	// Raw: this many bytes follow the frame's line, for stdout, or for stderr when ToStderr.
	Raw      int  `json:"raw,omitempty"`
	ToStderr bool `json:"to_stderr,omitempty"`
}

// frameWriter sends what is written to it as frames of one kind.
type frameWriter struct {
	mu     *sync.Mutex
	conn   net.Conn
	stderr bool
	raw    bool // the caller reads raw frames
}

func (w frameWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.conn.SetWriteDeadline(time.Now().Add(time.Minute))
	if w.raw && len(p) > 0 {
		head, err := json.Marshal(ctlFrame{Raw: len(p), ToStderr: w.stderr})
		if err != nil {
			return 0, err
		}
		if _, err := (&net.Buffers{append(head, '\n'), p}).WriteTo(w.conn); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	f := ctlFrame{Stdout: p}
	if w.stderr {
		f = ctlFrame{Stderr: p}
	}
	if err := json.NewEncoder(w.conn).Encode(f); err != nil {
		return 0, err
	}
	return len(p), nil
}

func ctlPath(cfg *config.Config) string { return filepath.Join(cfg.DataDir, "crewmail.sock") }

// ctlIdle is how long an admin command waits for the server to say something (output, or the
// keep-alive it sends every ctlKeepAlive while a command runs) before it gives up.
const (
	ctlIdle      = time.Minute
	ctlKeepAlive = 10 * time.Second
)

// ctlCall runs args on the server listening at path. ok is false when no server answers there.
func ctlCall(path string, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	return ctlCallIdle(path, args, stdout, stderr, ctlIdle)
}

// ctlCallIdle is ctlCall giving up after idle without a word from the server: a server whose
// control socket accepts nothing (its backlog takes the connection all the same) or that hangs
// must not hang the operator's command too.
func ctlCallIdle(path string, args []string, stdout, stderr io.Writer, idle time.Duration) (code int, ok bool) {
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return 0, false
	}
	defer conn.Close()
	failed := func(err error) (int, bool) {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			fmt.Fprintf(stderr, "crewmail: the server at %s did not answer within %s; it may be overloaded or stuck (see its log)\n", path, idle)
		} else {
			fmt.Fprintf(stderr, "crewmail: the server at %s stopped answering: %v\n", path, err)
		}
		return exitError, true
	}
	_ = conn.SetWriteDeadline(time.Now().Add(idle))
	if err := json.NewEncoder(conn).Encode(ctlRequest{Args: args, TTY: isTerminal(stderr), Raw: true}); err != nil {
		return failed(err)
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	for {
		var f ctlFrame
		_ = conn.SetReadDeadline(time.Now().Add(idle))
		line, err := br.ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(line, &f)
		}
		if err == nil && f.Raw > 0 {
			w := stdout
			if f.ToStderr {
				w = stderr
			}
			if _, err = io.CopyN(heedless{w}, br, int64(f.Raw)); err != nil {
				return failed(err)
			}
		}
		if err != nil {
			return failed(err)
		}
		stdout.Write(f.Stdout)
		stderr.Write(f.Stderr)
		if f.Code != nil {
			return *f.Code, true
		}
	}
}

// heedless passes what is written on and reports it written: output the caller stopped
// reading (a pipe into head) must not be taken for the server's failure, and the frames
// after it must still be read.
type heedless struct{ w io.Writer }

func (h heedless) Write(p []byte) (int, error) {
	_, _ = h.w.Write(p)
	return len(p), nil
}

// ctlServer answers admin commands on the control socket.
type ctlServer struct {
	ln   net.Listener
	path string
	b    *backend
	log  *slog.Logger
}

// listenCtl makes the control socket, usable by the server's user only. It is made in a fresh
// folder only that user may enter, made private there, and only then moved to path, so nobody
// else can connect to it at any moment, whatever the umask. A socket left by a server that
// crashed is replaced: we hold the database lock, so no other server is using it.
func listenCtl(path string, b *backend, log *slog.Logger) (*ctlServer, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".ctl-")
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// The socket file is renamed: the listener must not remove the old name when it closes.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return &ctlServer{ln: ln, path: path, b: b, log: log}, nil
}

// serve accepts until the listener is closed. Other errors (EMFILE when the process is out of
// file descriptors) are temporary: it waits a little, as net/http does, and goes on.
func (c *ctlServer) serve() {
	var delay time.Duration
	for {
		conn, err := c.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			c.log.Warn("control socket: accept failed; retrying", "err", err, "in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
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
	out, errOut := frameWriter{&mu, conn, false, req.Raw}, frameWriter{&mu, conn, true, req.Raw}
	b := *c.b
	b.progress = nil
	if req.TTY {
		b.progress = errOut
	}
	// Keep-alives tell the caller the command is still running (it gives up after ctlIdle of
	// silence).
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(ctlKeepAlive)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if _, err := out.Write(nil); err != nil {
					return
				}
			}
		}
	}()
	code := execAdmin(req.Args, func() (*backend, error) { return &b, nil }, nil, out, errOut)
	c.log.Info("control command", "args", req.Args, "code", code)
	mu.Lock()
	defer mu.Unlock()
	_ = conn.SetWriteDeadline(time.Now().Add(time.Minute))
	_ = json.NewEncoder(conn).Encode(ctlFrame{Code: &code})
}

func (c *ctlServer) close() error {
	err := c.ln.Close()
	if rmErr := os.Remove(c.path); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) && err == nil {
		err = rmErr
	}
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
