package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"crewmail/config"
	"crewmail/internal/mailtest"
	"crewmail/store"
)

// flakyListener fails its first Accepts with EMFILE, as a process out of file descriptors does.
type flakyListener struct {
	net.Listener
	failures atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.failures.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestControlSocketSurvivesAcceptErrors: after the process ran out of file descriptors for a
// moment, admin commands still reach the server.
func TestControlSocketSurvivesAcceptErrors(t *testing.T) {
	t.Parallel()
	ts := newCrew(t, mailtest.NewSink(t))
	path := filepath.Join(t.TempDir(), "flaky.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: ln}
	fl.failures.Store(3)
	c := &ctlServer{ln: fl, path: path, b: ts.ctl.b, log: slog.New(slog.DiscardHandler)}
	done := make(chan struct{})
	go func() { c.serve(); close(done) }()
	t.Cleanup(func() { c.close(); <-done })
	var out, errOut bytes.Buffer
	code, ok := ctlCallIdle(path, []string{"list", "ls"}, &out, &errOut, 20*time.Second)
	if !ok || code != 0 || !strings.Contains(out.String(), "crew@"+testDomain) {
		t.Errorf("list ls after the accept errors: ok %v, exit %d, %q %q", ok, code, out.String(), errOut.String())
	}
}

// TestAdminCommandGivesUpOnSilentServer: a server whose control socket takes the connection but
// never answers (its backlog accepts while nothing serves it) makes an admin command fail with
// a sentence, not hang.
func TestAdminCommandGivesUpOnSilentServer(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "silent.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out, errOut bytes.Buffer
	code, ok := ctlCallIdle(path, []string{"list", "ls"}, &out, &errOut, 200*time.Millisecond)
	if !ok || code != exitError || !strings.Contains(errOut.String(), "did not answer within") {
		t.Errorf("admin command against a silent server: ok %v, exit %d, stderr %q", ok, code, errOut.String())
	}
}

// TestControlSocketNeverWorldConnectable: even under umask 0 the control socket is never, not
// for a moment, connectable by other users. (Not parallel: the umask is the process's.)
func TestControlSocketNeverWorldConnectable(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "crewmail.sock")
	var seen atomic.Uint32 // a mode with group or other bits, as seen by a watcher
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if fi, err := os.Lstat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
				seen.Store(uint32(fi.Mode().Perm()))
			}
		}
	}()
	for range 300 {
		c, err := listenCtl(path, &backend{}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("control socket: %v, mode %v", err, fi.Mode())
		}
		c.close()
	}
	close(stop)
	<-watched
	if m := seen.Load(); m != 0 {
		t.Errorf("the control socket was seen with mode %#o: others could connect", m)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left behind in the data folder: %v", entries)
	}
}

// startServerWith runs crewmail with the config at cfgPath, after change edits the server,
// until the test ends.
func startServerWith(t *testing.T, cfgPath string, change func(*server)) *server {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startServer(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	change(srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server stopped with an error: %v", err)
		}
	})
	return srv
}

// TestHTTPSlowAndLargeRequests: a client that sends its request body too slowly is
// disconnected, a form larger than an unsubscribe form is refused with 413, and beyond
// http.max_connections a client waits until a connection closes.
func TestHTTPSlowAndLargeRequests(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfgPath := testConfig(t, dir, mailtest.NewSink(t).Addr, "")
	text, _ := os.ReadFile(cfgPath)
	text = bytes.Replace(text, []byte("[http]\n"), []byte("[http]\nmax_connections = 2\n"), 1)
	os.WriteFile(cfgPath, text, 0o600)
	// The server's own read timeout (20 s) shortened: what is tested is that there is one.
	addr := startServerWith(t, cfgPath, func(s *server) {
		if h := s.http; h.ReadTimeout <= 0 || h.ReadTimeout > time.Minute || h.ReadHeaderTimeout <= 0 || h.WriteTimeout <= 0 || h.IdleTimeout <= 0 {
			t.Errorf("the HTTP server's timeouts: header %v, read %v, write %v, idle %v; want each set, reading within a minute",
				h.ReadHeaderTimeout, h.ReadTimeout, h.WriteTimeout, h.IdleTimeout)
		}
		s.http.ReadTimeout = time.Second
	}).HTTPAddr

	// Slow body: the headers arrive, the body never completes.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /u/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nList-Unsub")
	slow.SetReadDeadline(time.Now().Add(60 * time.Second))
	io.Copy(io.Discard, slow)
	if err := slow.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Read(make([]byte, 1)); err == nil {
		t.Error("a client that never finishes its body is still connected")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("a client that never finishes its body was not disconnected within a minute")
	}

	// A large form.
	body := "List-Unsubscribe=One-Click&x=" + strings.Repeat("a", 1<<20)
	resp, err := http.Post("http://"+addr+"/u/token", "application/x-www-form-urlencoded", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 1 MiB form: %s, want 413", resp.Status)
	}

	// The connection cap: two idle connections hold both places; a third request is answered
	// once one of them closes.
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	third, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	fmt.Fprintf(third, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	r := bufio.NewReader(third)
	third.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := r.Peek(1); err == nil {
		t.Error("a third connection was served while two held both places")
	}
	idle[0].Close()
	third.SetReadDeadline(time.Now().Add(60 * time.Second))
	line, _ := r.ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Errorf("the third connection once a place was free: %q", line)
	}
}

// TestStopDoesNotWaitForeverOnStuckWork: something that never ends (here a read of the
// database that holds it open) does not keep the server from stopping: after the grace
// period it stops all the same and says so.
func TestStopDoesNotWaitForeverOnStuckWork(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(testConfig(t, t.TempDir(), mailtest.NewSink(t).Addr, ""))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startServer(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	srv.stopGrace = 500 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.run(ctx) }()
	inTx, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	go srv.st.View(func(store.Tx) error { close(inTx); <-release; return nil })
	<-inTx
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "without waiting") {
			t.Errorf("run returned %v, want an error saying it did not wait", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the server did not stop within a minute while a read of the database hung")
	}
}
