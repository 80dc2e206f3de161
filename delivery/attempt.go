package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/emersion/go-smtp"

	"crewmail/internal/outcome"
)

// stepError is a failure at one step of an attempt, at one address.
type stepError struct {
	step   outcome.Step
	remote string
	err    error
}

func (e *stepError) Error() string {
	if e.remote == "" {
		return fmt.Sprintf("%s: %v", e.step, e.err)
	}
	return fmt.Sprintf("%s: %s: %v", e.remote, e.step, e.err)
}

func (e *stepError) Unwrap() error { return e.err }

func stepErr(step outcome.Step, remote string, err error) error {
	return &stepError{step: step, remote: remote, err: err}
}

// Outcome reads what a Transport's Send returned as data: the step, the server's reply code,
// enhanced status and text, and whether retrying can help.
func Outcome(err error) outcome.Result {
	if err == nil {
		return outcome.Result{Step: outcome.Done}
	}
	r := outcome.Result{Step: outcome.Local, Text: err.Error(), Permanent: IsPermanent(err)}
	var se *stepError
	if errors.As(err, &se) {
		r.Step, r.Remote, r.Text = se.step, se.remote, se.err.Error()
	}
	var reply *smtp.SMTPError
	if errors.As(err, &reply) {
		r.Code, r.Text = reply.Code, reply.Message
		if ec := reply.EnhancedCode; ec != smtp.NoEnhancedCode && ec != (smtp.EnhancedCode{}) {
			r.Status = fmt.Sprintf("%d.%d.%d", ec[0], ec[1], ec[2])
		}
	}
	r.Refused = errors.Is(err, syscall.ECONNREFUSED)
	return r
}

// Note is what a transport tells about the attempt beyond its outcome, for the attempt's log
// line: where it went and how the session was protected.
type Note struct {
	Remote   string // host:port
	TLS      string // TLS version; "" for plain text
	Fallback string // why opportunistic TLS fell back to plain text
	Source   string // the local address
}

type noteKey struct{}

// WithNote returns a context whose transport fills n in.
func WithNote(ctx context.Context, n *Note) context.Context {
	return context.WithValue(ctx, noteKey{}, n)
}

func noteSession(ctx context.Context, addr string, s *session) {
	n, _ := ctx.Value(noteKey{}).(*Note)
	if n == nil {
		return
	}
	n.Remote, n.TLS, n.Fallback = addr, s.tls, s.fallback
	if la, ok := s.local.(*net.TCPAddr); ok {
		n.Source = la.IP.String()
	}
}
