package delivery

import (
	"bufio"
	"bytes"
	"io"
	"net/textproto"
	"testing"
)

// FuzzDotStuffing: whatever a message holds, its DATA section ends exactly at its end (one
// ".\r\n" line that a receiver reads as the end, RFC 5321 §4.5.2), it has no bare CR or LF, and
// a receiver that removes the stuffing gets the message back with each line end made CRLF.
func FuzzDotStuffing(f *testing.F) {
	for _, s := range []string{"", ".", "a\r\n.\r\nb", ".\r\n..\r\n", "x\ry\n.z", "\r\r\n\n.", "end\r\n.\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		out := appendStuffed(nil, msg)
		for i, c := range out {
			if c == '\r' && (i+1 == len(out) || out[i+1] != '\n') || c == '\n' && (i == 0 || out[i-1] != '\r') {
				t.Fatalf("bare CR or LF at %d of %q", i, out)
			}
		}
		br := bufio.NewReader(bytes.NewReader(out))
		got, err := io.ReadAll(textproto.NewReader(br).DotReader())
		if err != nil {
			t.Fatal(err)
		}
		if br.Buffered() != 0 {
			t.Fatalf("the data of %q ended %d bytes early", msg, br.Buffered())
		}
		// What the receiver gets (DotReader gives LF line ends): every CRLF, lone CR and lone
		// LF of msg is one line end, and the last line is ended.
		want := bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))
		want = bytes.ReplaceAll(want, []byte("\r"), []byte("\n"))
		if len(want) > 0 && want[len(want)-1] != '\n' {
			want = append(want, '\n')
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%q arrived as %q, want %q", msg, got, want)
		}
	})
}
