package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a bytes.Buffer safe for the flusher and the test to share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogBufferKeepsEveryLine: lines written from many goroutines all reach the output, whole
// and not interleaved, by the time Close returns.
func TestLogBufferKeepsEveryLine(t *testing.T) {
	var out lockedBuffer
	w := newLogBuffer(&out)
	c, ok := w.(io.Closer)
	if !ok {
		t.Fatal("a log going to a non-terminal is not buffered")
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				fmt.Fprintf(w, "goroutine %d line %d %s\n", g, i, strings.Repeat("x", 100))
			}
		})
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 8*500 {
		t.Fatalf("%d lines reached the output, want %d", len(lines), 8*500)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "goroutine ") || !strings.HasSuffix(l, strings.Repeat("x", 100)) {
			t.Fatalf("damaged line %q", l)
		}
	}
}
