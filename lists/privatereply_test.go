package lists

import (
	"testing"
	"time"
)

// TestReplyRate: a replier may send perHour private replies in any hour; the next waits until
// the oldest is an hour old; each replier counts alone.
func TestReplyRate(t *testing.T) {
	r := &replyRate{perHour: 3}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for i, tc := range []struct {
		who   string
		at    time.Duration
		allow bool
	}{
		{"bob", 0, true}, {"bob", 10 * time.Minute, true}, {"bob", 20 * time.Minute, true},
		{"bob", 30 * time.Minute, false}, {"carol", 30 * time.Minute, true},
		{"bob", 59 * time.Minute, false},
		{"bob", 60 * time.Minute, true}, // the first is an hour old: it no longer counts
		{"bob", 65 * time.Minute, false},
		{"bob", 70 * time.Minute, true},
	} {
		now := t0.Add(tc.at)
		if got := r.allow(tc.who, now); got != tc.allow {
			t.Fatalf("step %d: %s at +%v allowed %v, want %v", i, tc.who, tc.at, got, tc.allow)
		}
		if tc.allow {
			r.record(tc.who, now)
		}
	}
}
