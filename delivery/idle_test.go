package delivery

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestIdleSessionEndsWithQuit: a session nobody takes again within the idle time is ended
// with QUIT, not left open for the server to time out (Postfix: "timeout after
// END-OF-MESSAGE") or dropped.
func TestIdleSessionEndsWithQuit(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var said []string // every command the server read, in order
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		reply := func(s string) { conn.Write([]byte(s + "\r\n")) }
		reply("220 mx.test ESMTP")
		inData := false
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			if inData {
				if line == "." {
					inData = false
					reply("250 2.0.0 queued")
				}
				continue
			}
			mu.Lock()
			said = append(said, strings.ToUpper(strings.Fields(line + " x")[0]))
			mu.Unlock()
			switch strings.ToUpper(strings.Fields(line + " x")[0]) {
			case "EHLO":
				reply("250-mx.test\r\n250 PIPELINING")
			case "DATA":
				inData = true
				reply("354 go on")
			case "QUIT":
				reply("221 2.0.0 bye")
				return
			default:
				reply("250 2.0.0 ok")
			}
		}
	}()
	c := &client{hostname: "crewmail.test", tlsMode: TLSNone, idleFor: time.Nanosecond}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.send(ctx, ln.Addr().String(), TLSPolicy{Mode: TLSNone}, "a@crew.test", "b@example.test", []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatalf("send: %v", err)
	}
	deadline := time.Now().Add(time.Minute) // only a broken build waits this long
	for {
		mu.Lock()
		got := strings.Join(said, " ")
		mu.Unlock()
		if got == "EHLO MAIL RCPT DATA QUIT" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server read %q, want the idle session ended with QUIT", got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
