package delivery_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"

	"crewmail/delivery"
	"crewmail/internal/outcome"
)

// scriptServer is an SMTP server written out line by line, to see what go-smtp's server hides:
// how the client groups its commands. With pipelining it offers PIPELINING (RFC 2920) and
// answers MAIL only once RCPT and DATA have arrived as well, as a server may, so a client that
// waits for each reply never gets one. Without it, it notes every command that came before
// the reply to the one before it.
type scriptServer struct {
	Addr       string
	pipelining bool
	refuse     map[string]string // RCPT address → the refusal it gets
	// dataAnyway answers DATA with 354 even when no recipient was accepted (RFC 2920 §3.1
	// allows it; the client must then end the data at once).
	dataAnyway bool

	mu         sync.Mutex
	conns      int
	msgs       []received // the From, To and content of every message accepted
	empty      int        // DATA sections that were ended at once (a lone dot)
	violations []string   // commands sent early to a server that does not pipeline
}

func newScriptServer(t testing.TB, s *scriptServer) *scriptServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			wg.Go(func() { s.serve(c) })
		}
	})
	return s
}

func (s *scriptServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	r := textproto.NewReader(br)
	say := func(lines ...string) { fmt.Fprint(c, strings.Join(lines, "\r\n")+"\r\n") }
	say("220 script.test ESMTP")
	var from string
	var to []string
	for {
		line, err := r.ReadLine()
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		if !s.pipelining && br.Buffered() > 0 && verb != "QUIT" {
			s.mu.Lock()
			s.violations = append(s.violations, fmt.Sprintf("%q came with more commands behind it", line))
			s.mu.Unlock()
		}
		switch {
		case verb == "EHLO":
			if s.pipelining {
				say("250-script.test", "250-PIPELINING", "250 8BITMIME")
			} else {
				say("250-script.test", "250 8BITMIME")
			}
		case verb == "MAIL":
			from, to = strings.TrimSuffix(strings.TrimPrefix(strings.Fields(line)[1], "FROM:<"), ">"), nil
			if !s.pipelining {
				say("250 2.1.0 ok")
				continue
			}
			// The group: MAIL, RCPT, DATA, answered together.
			rcpt, err := r.ReadLine()
			if err != nil {
				return
			}
			data, err := r.ReadLine()
			if err != nil {
				return
			}
			if !strings.HasPrefix(rcpt, "RCPT TO:") || data != "DATA" {
				say("250 2.1.0 ok", "503 5.5.1 want RCPT", "503 5.5.1 want DATA")
				continue
			}
			replies := []string{"250 2.1.0 ok", s.rcpt(rcpt, &to)}
			if len(to) == 0 && !s.dataAnyway {
				say(append(replies, "554 5.5.1 no valid recipients")...)
				continue
			}
			say(append(replies, "354 go ahead")...)
			s.data(r, say, from, to)
		case verb == "RCPT":
			say(s.rcpt(line, &to))
		case verb == "DATA":
			if len(to) == 0 {
				say("554 5.5.1 no valid recipients")
				continue
			}
			say("354 go ahead")
			s.data(r, say, from, to)
		case verb == "RSET":
			from, to = "", nil
			say("250 2.0.0 ok")
		case verb == "QUIT":
			say("221 2.0.0 bye")
			return
		default:
			say("502 5.5.2 what?")
		}
	}
}

func (s *scriptServer) rcpt(line string, to *[]string) string {
	addr := strings.TrimSuffix(strings.TrimPrefix(line, "RCPT TO:<"), ">")
	if refusal, ok := s.refuse[addr]; ok {
		return refusal
	}
	*to = append(*to, addr)
	return "250 2.1.5 ok"
}

// data reads a message (textproto's DotReader un-stuffs it) and answers it.
func (s *scriptServer) data(r *textproto.Reader, say func(...string), from string, to []string) {
	var buf bytes.Buffer
	// DotReader turns CRLF into LF; the messages here compare in that form.
	if _, err := buf.ReadFrom(r.DotReader()); err != nil {
		return
	}
	s.mu.Lock()
	if len(to) == 0 {
		s.empty++
		s.mu.Unlock()
		say("554 5.5.1 no valid recipients")
		return
	}
	s.msgs = append(s.msgs, received{From: from, To: to, Data: buf.Bytes()})
	s.mu.Unlock()
	say("250 2.0.0 queued")
}

func (s *scriptServer) state() (conns int, msgs []received, empty int, violations []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns, append([]received(nil), s.msgs...), s.empty, append([]string(nil), s.violations...)
}

// TestPipelining: to a server that offers PIPELINING, MAIL, RCPT and DATA go out as one group
// (the server answers MAIL only once all three came); a refused recipient is that member's
// failure, permanent with the server's status, and the session stays in step for the next
// member, on the same connection. To a server that does not offer it, every command waits for
// the reply to the one before.
func TestPipelining(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		pipelining bool
		dataAnyway bool
	}{
		{"offered", true, false},
		{"offered, DATA accepted without recipients", true, true},
		{"not offered", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newScriptServer(t, &scriptServer{pipelining: tt.pipelining, dataAnyway: tt.dataAnyway,
				refuse: map[string]string{"gone@example.test": "550 5.1.1 no such user"}})
			sh := delivery.NewSmarthost(srv.Addr, "crewmail.test", delivery.TLSNone, "", "", nil, nil)
			t.Cleanup(func() { sh.Close() })
			for i, to := range []string{"ann@example.test", "gone@example.test", "bob@example.test"} {
				err := sendOnce(sh, fmt.Sprintf("crew+bounces-%d@crew.test", i), to, testMsg)
				if to != "gone@example.test" {
					if err != nil {
						t.Fatalf("send to %s: %v", to, err)
					}
					continue
				}
				got := delivery.Outcome(err)
				if got.Step != outcome.Rcpt || got.Code != 550 || got.Status != "5.1.1" || !got.Permanent {
					t.Errorf("refused recipient: %v (%+v), want a permanent 550 5.1.1 at RCPT", err, got)
				}
			}
			conns, msgs, empty, violations := srv.state()
			if conns != 1 {
				t.Errorf("%d connections, want 1: a refused recipient leaves the session usable", conns)
			}
			if len(msgs) != 2 || msgs[0].To[0] != "ann@example.test" || msgs[1].To[0] != "bob@example.test" {
				t.Fatalf("server accepted %+v, want the messages to ann and bob", msgs)
			}
			if msgs[1].From != "crew+bounces-2@crew.test" {
				t.Errorf("second message from %q, want its own envelope sender", msgs[1].From)
			}
			want := strings.ReplaceAll(string(testMsg), "\r\n", "\n")
			for _, m := range msgs {
				if string(m.Data) != want {
					t.Errorf("message to %s arrived as %q, want %q", m.To[0], m.Data, want)
				}
			}
			if wantEmpty := map[bool]int{true: 1}[tt.dataAnyway]; empty != wantEmpty {
				t.Errorf("%d DATA sections ended at once, want %d", empty, wantEmpty)
			}
			if len(violations) > 0 {
				t.Errorf("commands sent without waiting to a server that does not pipeline: %q", violations)
			}
		})
	}
}

// TestDotStuffing: what a member receives is what was sent, line for line: a line that begins
// with a period keeps it (RFC 5321 §4.5.2), a line that is only a period does not end the
// message, a bare CR or LF becomes a line end (CRLF) and never a chance to end the data early,
// and a last line without its CRLF is ended.
func TestDotStuffing(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverOptions{})
	sh := delivery.NewSmarthost(srv.Addr, "crewmail.test", delivery.TLSNone, "", "", nil, nil)
	t.Cleanup(func() { sh.Close() })
	head := "From: a@crew.test\r\nSubject: dots\r\n\r\n"
	for i, tt := range []struct{ body, want string }{
		{".\r\n..\r\n.x\r\nend\r\n", ".\r\n..\r\n.x\r\nend\r\n"},
		{"a\r\n.\r\nafter the lone dot\r\n", "a\r\n.\r\nafter the lone dot\r\n"},
		{"bare\nLF\n.dot after LF\n", "bare\r\nLF\r\n.dot after LF\r\n"},
		{"bare\rCR\r.\r\nsmuggled?\r\n", "bare\r\nCR\r\n.\r\nsmuggled?\r\n"},
		{"no end of line", "no end of line\r\n"},
		{"\r\n.\r\n", "\r\n.\r\n"},
	} {
		msg := head + tt.body
		if err := sendOnce(sh, "crew-bounces@crew.test", fmt.Sprintf("r%d@example.test", i), []byte(msg)); err != nil {
			t.Fatalf("send %q: %v", tt.body, err)
		}
		msgs := srv.Messages()
		if len(msgs) != i+1 {
			t.Fatalf("server has %d messages after %d sends: %q ended the data early or split it", len(msgs), i+1, tt.body)
		}
		if got := string(msgs[i].Data); got != head+tt.want {
			t.Errorf("body %q arrived as %q, want %q", tt.body, got, head+tt.want)
		}
	}
	if accepted, _ := srv.Conns(); accepted != 1 {
		t.Errorf("%d connections, want 1", accepted)
	}
}

// TestMultilineRefusal: a refusal over several lines, each with the status (RFC 2034 §4), is
// read whole and its status kept once.
func TestMultilineRefusal(t *testing.T) {
	t.Parallel()
	srv := newScriptServer(t, &scriptServer{pipelining: true,
		refuse: map[string]string{"full@example.test": "552-5.2.2 mailbox full\r\n552-5.2.2 ask the user\r\n552 5.2.2 to make room"}})
	sh := delivery.NewSmarthost(srv.Addr, "crewmail.test", delivery.TLSNone, "", "", nil, nil)
	t.Cleanup(func() { sh.Close() })
	err := sendOnce(sh, "crew-bounces@crew.test", "full@example.test", testMsg)
	got := delivery.Outcome(err)
	if got.Step != outcome.Rcpt || got.Code != 552 || got.Status != "5.2.2" || got.Text != "mailbox full\nask the user\nto make room" {
		t.Errorf("outcome %+v, want 552 5.2.2 at RCPT with the three lines of text", got)
	}
	if err := sendOnce(sh, "crew-bounces@crew.test", "ann@example.test", testMsg); err != nil {
		t.Errorf("the next message: %v", err)
	}
}
