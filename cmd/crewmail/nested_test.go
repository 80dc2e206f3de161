package main

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"crewmail/internal/mailtest"
)

// A mail to crew-request@ of 10,000 nested multiparts whose innermost text says "help" (1.4 MB,
// from anyone) does not hold up other mail: the posts members make meanwhile are each accepted
// within a generous bound, and the server's memory stays bounded. Its body used to be read
// inside the one write transaction, which a walk of every level held for many seconds.
func TestDeeplyNestedRequestDoesNotHoldUpPosts(t *testing.T) {
	sink := mailtest.NewSink(t)
	ts := newCrew(t, sink, "alice@example.test")
	hdr := fmt.Sprintf("From: mallory@elsewhere.example\r\nTo: crew-request@%s\r\nSubject: \r\n"+
		"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <nested@elsewhere.example>\r\nMIME-Version: 1.0\r\n", testDomain)
	nested := mailtest.NestedMultipart(hdr, 10000, "help")
	hwm := mailtest.ProcStatus("VmHWM")

	c, err := smtp.Dial(ts.SMTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("mallory@elsewhere.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("crew-request@"+testDomain, nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(nested); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- w.Close() }() // the end of DATA, then the reply

	// Members post while the request is being handled, until it has been.
	var slowest time.Duration
	posts := 0
	for finished := false; !finished; {
		posts++
		sent := time.Now()
		msg := post("alice@example.test", "Tomatoes", fmt.Sprintf("tomatoes-%d@example.test", posts), "Ripe ones by the shed.\r\n")
		if err := send(t, ts.SMTPAddr, "alice@example.test", []string{"crew@" + testDomain}, msg); err != nil {
			t.Fatalf("post %d: %v", posts, err)
		}
		slowest = max(slowest, time.Since(sent))
		select {
		case err := <-done:
			finished = true
			if err != nil {
				t.Fatalf("the nested request: %s (%v)", smtpCode(err), err)
			}
		default:
		}
	}
	took := time.Since(start)
	grown := mailtest.ProcStatus("VmHWM") - hwm
	t.Logf("request of %d bytes handled in %v; %d posts meanwhile, the slowest accepted in %v; peak memory grew %d MiB",
		len(nested), took, posts, slowest, grown>>20)
	if slowest > 5*time.Second {
		t.Errorf("a post made meanwhile took %v to be accepted, want under 5 s", slowest)
	}
	if grown > 500<<20 {
		t.Errorf("peak memory grew by %d MiB, want under 500 MiB", grown>>20)
	}
	// Every post made meanwhile went out to the member (the request's answer goes out too).
	for k := posts; ; k++ {
		n := 0
		for _, m := range sink.Wait(t, k) {
			if bytes.Contains(m.Data, []byte("Subject: Tomatoes")) {
				n++
			}
		}
		if n == posts {
			break
		}
	}
}
