package lists

import (
	"bytes"
	"log/slog"
	"strings"
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

// TestPrivateReplyLogLine: a private reply passed on is logged in one line, with the list,
// the post's sequence, the replier and the author, and nothing of what it says; it is never
// archived.
func TestPrivateReplyLogLine(t *testing.T) {
	s := newTestService(t)
	var logged bytes.Buffer
	s.log = slog.New(slog.NewTextHandler(&logged, nil))
	const crew = "crew@lists.example.test"
	if _, err := s.CreateList(crew, ListOptions{Post: "members"}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"alice@example.test", "bob@example.test"} {
		if _, err := s.AddMember(crew, m, "", false); err != nil {
			t.Fatal(err)
		}
	}
	post, _ := s.Route(crew)
	if _, err := s.Accept(Envelope{From: "alice@example.test", Targets: []Target{post}},
		[]byte("From: alice@example.test\r\nTo: "+crew+"\r\nSubject: Beans\r\nMessage-ID: <beans@example.test>\r\n\r\nBeans.\r\n")); err != nil {
		t.Fatal(err)
	}
	relay := s.PrivateReplyAddress(crew, 1)
	tgt, err := s.Route(relay)
	if err != nil || tgt.Kind != KindPrivate {
		t.Fatalf("Route(%s) = %+v, %v", relay, tgt, err)
	}
	if err := s.Admit("bob@example.test", tgt); err != nil {
		t.Fatalf("Admit(bob) = %v", err)
	}
	if r, ok := IsRefusal(s.Admit("mallory@example.test", tgt)); !ok || r.Code != 550 || r.Enhanced != [3]int{5, 7, 1} {
		t.Errorf("Admit(mallory) = %v", r)
	}
	logged.Reset()
	res, err := s.Accept(Envelope{From: "bob@example.test", Targets: []Target{tgt}},
		[]byte("From: bob@example.test\r\nTo: "+relay+"\r\nSubject: Re: Beans\r\nMessage-ID: <bob@example.test>\r\n\r\nA secret about beans.\r\n"))
	if err != nil || res.Queued != 1 || len(res.Posts) != 0 {
		t.Fatalf("Accept = %+v, %v", res, err)
	}
	want := `msg="private reply passed on" list=crew@lists.example.test seq=1 from=bob@example.test to=alice@example.test`
	if lines := strings.Split(strings.TrimSpace(logged.String()), "\n"); len(lines) != 1 || !strings.Contains(lines[0], want) || strings.Contains(lines[0], "secret") {
		t.Errorf("log:\n%s\nwant one line with %s", logged.String(), want)
	}
}
