package check

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// greeting connects to the configured SMTP listener and reads its greeting: crewmail's is
// "220 HOSTNAME ESMTP Service Ready" (RFC 5321 §4.2: 220 and the server's name).
func greeting(ctx context.Context, s Setup) Finding {
	f := Finding{What: "SMTP"}
	host, port, err := net.SplitHostPort(s.SMTPListen)
	if err != nil || port == "0" {
		f.Level, f.Detail = Warn, fmt.Sprintf("smtp.listen is %q, not an address with a port to connect to", s.SMTPListen)
		return f
	}
	// Listening on every address includes loopback.
	dialHost := host
	switch host {
	case "", "0.0.0.0":
		dialHost = "127.0.0.1"
	case "::":
		dialHost = "::1"
	}
	addr := net.JoinHostPort(dialHost, port)
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		f.Level = Warn
		f.Detail = fmt.Sprintf("nothing answers at %s, the smtp.listen address (%v): crewmail is not running here; run the check on the server while it runs", addr, errors.Unwrap(err))
		return f
	}
	// A probe that only read: a failed close loses nothing.
	defer func() { _ = conn.Close() }()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		f.Level, f.Detail = Fail, fmt.Sprintf("cannot talk to %s: %v", addr, err)
		return f
	}
	first, err := readReply(bufio.NewReader(io.LimitReader(conn, 4096)))
	var nerr net.Error
	switch {
	case errors.As(err, &nerr) && nerr.Timeout():
		f.Level = Fail
		f.Detail = fmt.Sprintf("something at %s accepted the connection but sent no greeting within %s: another program holds the port, or crewmail is stuck", addr, timeout)
		return f
	case err != nil:
		f.Level, f.Detail = Fail, fmt.Sprintf("something other than an SMTP server answers at %s: %v", addr, err)
		return f
	}
	// Be polite; the answer does not matter.
	_, _ = io.WriteString(conn, "QUIT\r\n")
	code, text := first[:3], ""
	if len(first) > 4 {
		text = strings.TrimSpace(first[4:])
	}
	name, _, _ := strings.Cut(text, " ")
	switch {
	case code != "220":
		f.Level, f.Detail = Fail, fmt.Sprintf("%s answers %q instead of a 220 greeting", addr, first)
	case !strings.EqualFold(name, s.Hostname):
		f.Level = Fail
		f.Detail = fmt.Sprintf("%s greets as %q, not as %s: another mail server answers there, not crewmail", addr, first, s.Hostname)
	default:
		f.Level, f.Detail = OK, fmt.Sprintf("%s answers %q", addr, first)
		if port != "25" || net.ParseIP(host).IsLoopback() || host == "localhost" {
			// Fine behind a port forward or a proxy, which this check cannot see.
			f.Detail += fmt.Sprintf("; other servers connect to port 25 of %s, so something must forward that to %s", s.Hostname, s.SMTPListen)
		}
	}
	return f
}

// readReply reads an SMTP reply (RFC 5321 §4.2.1: lines "CODE-text", then "CODE text") and
// returns its first line.
func readReply(br *bufio.Reader) (string, error) {
	var first string
	for range 20 {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 || !isCode(line[:3]) || (len(line) > 3 && line[3] != ' ' && line[3] != '-') {
			return "", fmt.Errorf("not an SMTP reply: %q", line)
		}
		if first == "" {
			first = line
		}
		if len(line) == 3 || line[3] == ' ' {
			return first, nil
		}
	}
	return "", fmt.Errorf("a reply of more than 20 lines")
}

func isCode(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
