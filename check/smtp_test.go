package check_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"crewmail/check"
)

// listen answers each connection on 127.0.0.1 with greeting (nothing when empty), then waits for
// the client to hang up; it stops when the test ends.
func listen(t *testing.T, greeting string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if greeting != "" {
					if _, err := io.WriteString(c, greeting); err != nil {
						return
					}
				}
				_, _ = io.Copy(io.Discard, bufio.NewReader(c))
			}()
		}
	}()
	return ln.Addr().String()
}

// greeting is the SMTP finding for a server at addr.
func greeting(t *testing.T, addr string) check.Finding {
	t.Helper()
	s := setup()
	s.SMTPListen, s.Timeout = addr, 300*time.Millisecond
	return byWhat(run(t, s, server...))["SMTP"]
}

func TestSMTPGreeting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, greeting string
		level          check.Level
		detail         string
	}{
		{"crewmail", "220 mx.example.test ESMTP Service Ready\r\n", check.OK, `answers "220 mx.example.test ESMTP Service Ready"`},
		{"several lines", "220-mx.example.test ESMTP\r\n220-welcome\r\n220 ready\r\n", check.OK, `answers "220-mx.example.test ESMTP"`},
		{"another name", "220 other.example.net ESMTP Postfix\r\n", check.Fail, `greets as "220 other.example.net ESMTP Postfix", not as mx.example.test`},
		{"refusing", "554 mx.example.test no service\r\n", check.Fail, `answers "554 mx.example.test no service" instead of a 220 greeting`},
		{"not SMTP", "SSH-2.0-OpenSSH_9.6\r\n", check.Fail, "something other than an SMTP server answers"},
		{"silent", "", check.Fail, "sent no greeting within 300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := greeting(t, listen(t, tc.greeting))
			if got.Level != tc.level || !strings.Contains(got.Detail, tc.detail) {
				t.Errorf("got %+v\nwant %s %q", got, tc.level, tc.detail)
			}
		})
	}
}

func TestSMTPGreetingOnAnotherPortSaysSo(t *testing.T) {
	t.Parallel()
	addr := listen(t, "220 mx.example.test ESMTP Service Ready\r\n")
	got := greeting(t, addr)
	if got.Level != check.OK || !strings.Contains(got.Detail, "other servers connect to port 25 of mx.example.test, so something must forward that to "+addr) {
		t.Errorf("greeting on %s: %+v", addr, got)
	}
}

func TestNothingListens(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	got := greeting(t, addr)
	if got.Level != check.Warn || !strings.Contains(got.Detail, "nothing answers at "+addr) || !strings.Contains(got.Detail, "crewmail is not running here") {
		t.Errorf("nothing at %s: %+v", addr, got)
	}
	if got := greeting(t, "127.0.0.1:0"); got.Level != check.Warn || !strings.Contains(got.Detail, "not an address with a port") {
		t.Errorf("port 0: %+v", got)
	}
}
