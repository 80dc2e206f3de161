package delivery_test

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"crewmail/delivery"
)

// TestBackoff is the written-down retry schedule: one minute after the first failure, doubling,
// capped at four hours, ±10 % jitter.
func TestBackoff(t *testing.T) {
	t.Parallel()
	nominal := []time.Duration{ // attempt 1..12
		1 * time.Minute,
		2 * time.Minute,
		4 * time.Minute,
		8 * time.Minute,
		16 * time.Minute,
		32 * time.Minute,
		64 * time.Minute,
		128 * time.Minute,
		4 * time.Hour, // 256 min, capped
		4 * time.Hour,
		4 * time.Hour,
		4 * time.Hour,
	}
	jitters := []struct {
		j      float64
		factor float64 // the multiplier the jitter stands for
	}{
		{0, 0.9},
		{0.5, 1.0},
		{0.999, 1.0998},
	}
	for _, jt := range jitters {
		for i, nom := range nominal {
			n := i + 1
			t.Run(fmt.Sprintf("attempt=%d/jitter=%v", n, jt.j), func(t *testing.T) {
				got := delivery.Backoff(n, jt.j)
				want := time.Duration(float64(nom) * jt.factor)
				if diff := got - want; diff < -time.Microsecond || diff > time.Microsecond {
					t.Errorf("Backoff(%d, %v) = %v, want %v", n, jt.j, got, want)
				}
				// Whatever the jitter, within ±10 % of the nominal delay.
				if lo, hi := time.Duration(0.9*float64(nom)), time.Duration(1.1*float64(nom)); got < lo-time.Microsecond || got >= hi {
					t.Errorf("Backoff(%d, %v) = %v, outside [%v, %v)", n, jt.j, got, lo, hi)
				}
			})
		}
	}
}

// TestBackoffMonotonic: for a given jitter the delay never shrinks, grows strictly until the cap,
// and even the largest jitter of attempt n waits less than the smallest of attempt n+1.
func TestBackoffMonotonic(t *testing.T) {
	t.Parallel()
	for _, j := range []float64{0, 0.25, 0.5, 0.75, 0.999} {
		for n := 1; n < 12; n++ {
			cur, next := delivery.Backoff(n, j), delivery.Backoff(n+1, j)
			if next < cur {
				t.Errorf("jitter %v: Backoff(%d) = %v > Backoff(%d) = %v", j, n, cur, n+1, next)
			}
			if n < 9 && next <= cur {
				t.Errorf("jitter %v: Backoff(%d) = %v does not grow to Backoff(%d) = %v before the cap", j, n, cur, n+1, next)
			}
		}
	}
	for n := 1; n < 9; n++ {
		if hi, lo := delivery.Backoff(n, 0.999), delivery.Backoff(n+1, 0); hi >= lo {
			t.Errorf("Backoff(%d, 0.999) = %v overlaps Backoff(%d, 0) = %v", n, hi, n+1, lo)
		}
	}
}

// TestBackoffExtremes: attempt numbers below one count as the first; very large ones stay at
// the cap instead of overflowing.
func TestBackoffExtremes(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, -1, -1000} {
		if got, want := delivery.Backoff(n, 0.5), delivery.Backoff(1, 0.5); got != want {
			t.Errorf("Backoff(%d) = %v, want %v (as attempt 1)", n, got, want)
		}
	}
	for _, n := range []int{13, 31, 63, 64, 100, 1100, 5000} {
		got := delivery.Backoff(n, 0.5)
		if d := got - 4*time.Hour; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("Backoff(%d, 0.5) = %v, want the 4h cap", n, got)
		}
	}
}

func TestIsPermanent(t *testing.T) {
	t.Parallel()
	cause := errors.New("mailbox gone")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", io.ErrUnexpectedEOF, false},
		{"marked", delivery.Permanent(cause), true},
		{"marked and wrapped", fmt.Errorf("send: %w", delivery.Permanent(cause)), true},
		{"550", &smtp.SMTPError{Code: 550, Message: "no such user"}, true},
		{"554 wrapped", fmt.Errorf("RCPT TO: %w", &smtp.SMTPError{Code: 554}), true},
		{"599", &smtp.SMTPError{Code: 599}, true},
		{"451", &smtp.SMTPError{Code: 451}, false},
		{"451 wrapped", fmt.Errorf("DATA: %w", &smtp.SMTPError{Code: 451}), false},
		{"421", &smtp.SMTPError{Code: 421}, false},
		{"250 as an error", &smtp.SMTPError{Code: 250}, false},
		{"600", &smtp.SMTPError{Code: 600}, false},
	}
	for _, tt := range tests {
		if got := delivery.IsPermanent(tt.err); got != tt.want {
			t.Errorf("%s: IsPermanent(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// TestPermanentKeepsCause: marking an error permanent keeps its message and its chain.
func TestPermanentKeepsCause(t *testing.T) {
	t.Parallel()
	cause := fmt.Errorf("lookup: %w", io.ErrUnexpectedEOF)
	err := delivery.Permanent(cause)
	if err.Error() != cause.Error() {
		t.Errorf("Permanent(err).Error() = %q, want %q", err.Error(), cause.Error())
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("errors.Is(Permanent(err), cause) = false")
	}
}
