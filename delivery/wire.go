package delivery

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"crewmail/internal/outcome"
)

// wire speaks the mail transactions of an open session. go-smtp's client greets, says EHLO
// and logs in; from then on the session's commands are written here, because go-smtp's client
// sends each command on its own and waits for its reply (no PIPELINING), and dot-stuffs the
// body a byte at a time. The server speaks only when spoken to (RFC 5321 §4.1), so once
// go-smtp has read the reply to its last command its buffer is empty and this reader, on the
// same connection, takes over without losing a byte.
type wire struct {
	conn net.Conn // the connection go-smtp's client was made on (TLS, plain or resumed)
	r    *textproto.Reader
	buf  []byte // the bytes of the next write, kept between transactions

	pipelining bool // RFC 2920
	eightBit   bool // RFC 6152: BODY=8BITMIME
	utf8       bool // RFC 6531
	size       bool // RFC 1870: SIZE=
}

// newWire takes over the session of sc, made on conn, after EHLO (and AUTH).
func newWire(sc *smtp.Client, conn net.Conn) *wire {
	w := &wire{conn: conn, r: textproto.NewReader(bufio.NewReaderSize(conn, 4096))}
	w.pipelining, _ = sc.Extension("PIPELINING")
	w.eightBit, _ = sc.Extension("8BITMIME")
	w.utf8, _ = sc.Extension("SMTPUTF8")
	w.size, _ = sc.Extension("SIZE")
	return w
}

// Timeouts of one command's reply and of the reply to the end of a message when the attempt
// has no deadline of its own (RFC 5321 §4.5.3.2: 5 and 10 minutes).
const (
	commandTimeout = 5 * time.Minute
	dataTimeout    = 12 * time.Minute
)

// deadline is when the reply to what was just written must have come.
func deadline(ctx context.Context, d time.Duration) time.Time {
	if t, ok := ctx.Deadline(); ok {
		return t
	}
	return time.Now().Add(d)
}

// transaction sends msg from sender to rcpt in one mail transaction. When the server offers
// PIPELINING, MAIL, RCPT and DATA go out in one write and their replies are read in order
// (RFC 2920 §3.1: every reply of the group is checked; DATA is last, as it must be); the body
// goes out in one more write, dot-stuffed in one pass, and then the reply to the end of data
// is read: two round trips a message instead of four. Whatever fails, every reply owed is
// read, so the session stays in step and can be reset and reused.
func (w *wire) transaction(ctx context.Context, addr, sender, rcpt string, utf8 bool, msg []byte) error {
	if strings.ContainsAny(sender, "\r\n") {
		return Permanent(stepErr(outcome.Mail, addr, errors.New("the sender address contains a line break")))
	}
	if strings.ContainsAny(rcpt, "\r\n") {
		return Permanent(stepErr(outcome.Rcpt, addr, errors.New("the recipient address contains a line break")))
	}
	defer w.conn.SetDeadline(time.Time{})
	b := w.buf[:0]
	b = append(b, "MAIL FROM:<"...)
	b = append(b, sender...)
	b = append(b, '>')
	if w.eightBit {
		b = append(b, " BODY=8BITMIME"...)
	}
	if w.size {
		b = fmt.Appendf(b, " SIZE=%d", len(msg))
	}
	if utf8 {
		b = append(b, " SMTPUTF8"...)
	}
	b = append(b, "\r\n"...)
	mail := len(b)
	b = append(b, "RCPT TO:<"...)
	b = append(b, rcpt...)
	b = append(b, ">\r\n"...)
	rcptEnd := len(b)
	b = append(b, "DATA\r\n"...)
	w.buf = b

	_ = w.conn.SetDeadline(deadline(ctx, commandTimeout))
	var mailErr, rcptErr, dataErr error
	if w.pipelining {
		if _, err := w.conn.Write(b); err != nil {
			return stepErr(outcome.Mail, addr, err)
		}
		// The replies come in the order of the commands (RFC 2920 §3.2).
		for _, c := range []struct {
			expect int
			step   outcome.Step
			to     *error
		}{{250, outcome.Mail, &mailErr}, {25, outcome.Rcpt, &rcptErr}, {354, outcome.Data, &dataErr}} {
			refused, err := w.reply(c.expect)
			if err != nil {
				return stepErr(c.step, addr, err)
			}
			if isClosing(refused) {
				// 421: the server closes the connection; the other replies never come.
				return stepErr(c.step, addr, refused)
			}
			*c.to = refused
		}
	} else {
		for _, c := range []struct {
			cmd    []byte
			expect int
			step   outcome.Step
			to     *error
		}{{b[:mail], 250, outcome.Mail, &mailErr}, {b[mail:rcptEnd], 25, outcome.Rcpt, &rcptErr}, {b[rcptEnd:], 354, outcome.Data, &dataErr}} {
			if _, err := w.conn.Write(c.cmd); err != nil {
				return stepErr(c.step, addr, err)
			}
			refused, err := w.reply(c.expect)
			if err != nil {
				return stepErr(c.step, addr, err)
			}
			if refused != nil {
				*c.to = refused
				break // the commands after a refusal are not sent
			}
		}
	}
	if mailErr != nil || rcptErr != nil {
		if w.pipelining && dataErr == nil {
			// DATA was accepted although the transaction has no sender or no recipient: end
			// the message at once with a lone dot (RFC 2920 §3.1), and read what that earns.
			if _, err := w.conn.Write([]byte(".\r\n")); err != nil {
				return stepErr(outcome.Data, addr, err)
			}
			if _, err := w.reply(250); err != nil {
				return stepErr(outcome.Data, addr, err)
			}
		}
		if mailErr != nil {
			return stepErr(outcome.Mail, addr, mailErr)
		}
		return stepErr(outcome.Rcpt, addr, rcptErr)
	}
	if dataErr != nil {
		return stepErr(outcome.Data, addr, dataErr)
	}
	w.buf = appendStuffed(w.buf[:0], msg)
	_ = w.conn.SetDeadline(deadline(ctx, dataTimeout))
	if _, err := w.conn.Write(w.buf); err != nil {
		return stepErr(outcome.Data, addr, err)
	}
	refused, err := w.reply(250)
	if err == nil {
		err = refused
	}
	if err != nil {
		return stepErr(outcome.Data, addr, err)
	}
	if cap(w.buf) > 1<<20 {
		w.buf = nil // a large message does not keep its buffer for the session's life
	}
	return nil
}

// reply reads one reply. refused is the server's refusal (a *smtp.SMTPError) when the code is
// not the one expected; err is a failure to read any reply (the session is lost).
func (w *wire) reply(expect int) (refused, err error) {
	_, _, err = w.r.ReadResponse(expect)
	var te *textproto.Error
	if errors.As(err, &te) {
		return replyError(err), nil
	}
	return nil, err
}

// command sends one command and reads its reply.
func (w *wire) command(cmd string, expect int, timeout time.Duration) error {
	_ = w.conn.SetDeadline(time.Now().Add(timeout))
	defer w.conn.SetDeadline(time.Time{})
	if _, err := w.conn.Write([]byte(cmd + "\r\n")); err != nil {
		return err
	}
	refused, err := w.reply(expect)
	if err != nil {
		return err
	}
	return refused
}

// reset ends a refused transaction with RSET so that the session can carry the next one.
func (w *wire) reset() error { return w.command("RSET", 250, commandTimeout) }

// appendStuffed appends msg to dst as the content of DATA, in one pass: every line ends with
// CRLF (RFC 5321 §2.3.8: a bare CR or LF is not a line end; each becomes CRLF here, so no
// receiver can read a line break, and so an end of data, where another does not), a line that
// begins with a period gets one more (RFC 5321 §4.5.2), the last line is ended if it was not,
// and the end of data follows (".\r\n").
func appendStuffed(dst, msg []byte) []byte {
	dst = bytesGrow(dst, len(msg)+len(msg)/64+5)
	for len(msg) > 0 {
		if msg[0] == '.' {
			dst = append(dst, '.')
		}
		i := bytes.IndexByte(msg, '\n')
		line := msg
		if i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		// A bare CR inside the line ends a line as well.
		for j := bytes.IndexByte(line, '\r'); j >= 0; j = bytes.IndexByte(line, '\r') {
			dst = append(append(dst, line[:j]...), '\r', '\n')
			line = line[j+1:]
			if len(line) > 0 && line[0] == '.' {
				dst = append(dst, '.')
			}
		}
		dst = append(append(dst, line...), '\r', '\n')
	}
	return append(dst, ".\r\n"...)
}

// bytesGrow makes room for n more bytes in b.
func bytesGrow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		return nb
	}
	return b
}
