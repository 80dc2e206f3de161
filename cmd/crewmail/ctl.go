package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"crewmail/config"
)

// The control socket lets admin commands reach a running server, which alone may open the
// database. One request per connection: a JSON line with the command's arguments; the answer
// is a JSON line with what the command printed and its exit status.

type ctlRequest struct {
	Args []string `json:"args"`
}

type ctlResponse struct {
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	Code   int    `json:"code"`
}

func ctlPath(cfg *config.Config) string { return filepath.Join(cfg.DataDir, "crewmail.sock") }

// ctlCall runs args on the server listening at path. ok is false when no server answers there.
func ctlCall(path string, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return 0, false
	}
	defer conn.Close()
	if err := json.NewEncoder(conn).Encode(ctlRequest{Args: args}); err != nil {
		fmt.Fprintf(stderr, "crewmail: talk to the server at %s: %v\n", path, err)
		return exitError, true
	}
	var resp ctlResponse
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&resp); err != nil {
		fmt.Fprintf(stderr, "crewmail: no answer from the server at %s: %v\n", path, err)
		return exitError, true
	}
	io.WriteString(stdout, resp.Stdout)
	io.WriteString(stderr, resp.Stderr)
	return resp.Code, true
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
	_ = conn.SetDeadline(time.Now().Add(5 * time.Minute))
	var req ctlRequest
	if err := json.NewDecoder(io.LimitReader(conn, 1<<20)).Decode(&req); err != nil || len(req.Args) == 0 {
		return
	}
	var out, errOut bytes.Buffer
	code := execAdmin(req.Args, func() (*backend, error) { return c.b, nil }, &out, &errOut)
	c.log.Info("control command", "args", req.Args, "code", code)
	_ = json.NewEncoder(conn).Encode(ctlResponse{Stdout: out.String(), Stderr: errOut.String(), Code: code})
}

func (c *ctlServer) close() error {
	err := c.ln.Close()
	return err
}
