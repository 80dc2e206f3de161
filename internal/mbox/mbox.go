// Package mbox owns reading and writing mbox files (RFC 4155) in the mboxrd flavour: a line of
// a message that starts with "From " after any number of ">" gets one more ">" on the way out
// and loses one on the way in, so every message comes back exactly as it was. Messages are
// handled with CRLF line ends (as SMTP carries them and the archive keeps them) and written
// with LF, as mbox files are.
package mbox

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// asctime is the date format of an mbox "From " line.
const asctime = "Mon Jan _2 15:04:05 2006"

var fromLineRE = regexp.MustCompile(`^>*From `)

// Writer writes messages to an mbox file.
type Writer struct {
	bw *bufio.Writer
}

// NewWriter returns a Writer that writes to w; Flush writes out what it holds.
func NewWriter(w io.Writer) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, 64<<10)}
}

// Write writes one message, raw, received at received from the envelope sender from ("" is
// the null sender, written MAILER-DAEMON).
func (w *Writer) Write(from string, received time.Time, raw []byte) error {
	bw := w.bw
	if from == "" {
		from = "MAILER-DAEMON"
	}
	fmt.Fprintf(bw, "From %s %s\n", from, received.UTC().Format(asctime))
	for line := range bytes.Lines(raw) {
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if fromLineRE.Match(line) {
			bw.WriteByte('>')
		}
		bw.Write(line)
		bw.WriteByte('\n')
	}
	// bufio keeps the first error and returns it from every later write and from Flush.
	return bw.WriteByte('\n')
}

// Flush writes out what the Writer holds.
func (w *Writer) Flush() error { return w.bw.Flush() }

// Read calls fn with each message of an mbox (mboxrd, or the mboxo older programs write), its
// lines turned to CRLF and one level of mboxrd quoting undone, and the date of its "From "
// line (zero when it does not parse). A file that does not start with a "From " line is no
// mbox.
func Read(r io.Reader, fn func(raw []byte, received time.Time) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var cur []byte
	var received time.Time
	started, blank := false, true
	emit := func() error {
		if !started {
			return nil
		}
		// The empty line before the next "From " (and at the end of the file) separates
		// messages; it is not the message's. A file that ends without one keeps its last line.
		if bytes.HasSuffix(cur, []byte("\r\n\r\n")) {
			cur = cur[:len(cur)-2]
		}
		if len(cur) == 0 {
			return nil
		}
		msg := cur
		cur = nil
		return fn(msg, received)
	}
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			if blank && bytes.HasPrefix(line, []byte("From ")) {
				if err := emit(); err != nil {
					return err
				}
				started, cur = true, nil
				received = fromLineDate(string(line))
				blank = false
				continue
			}
			if !started {
				return fmt.Errorf("not an mbox file: it does not start with a \"From \" line")
			}
			if fromLineRE.Match(line) && line[0] == '>' {
				line = line[1:]
			}
			cur = append(append(cur, line...), '\r', '\n')
			blank = len(line) == 0
		}
		if err == io.EOF {
			return emit()
		}
		if err != nil {
			return err
		}
	}
}

// fromLineDate reads the date at the end of an mbox "From sender date" line.
func fromLineDate(line string) time.Time {
	f := strings.Fields(line)
	if len(f) < 7 {
		return time.Time{}
	}
	d, err := time.Parse("Mon Jan 2 15:04:05 2006", strings.Join(f[len(f)-5:], " "))
	if err != nil {
		return time.Time{}
	}
	return d
}
