// Package rawmsg owns reading the header of a message as it arrived over SMTP, in the one
// tolerant way every package that looks at inbound mail shares.
package rawmsg

import (
	"bufio"
	"bytes"

	"github.com/emersion/go-message/textproto"
)

// ReadHeader parses the header of raw. Lines of only spaces and tabs before it, which some
// mail software writes and which are neither a header field nor the end of the header, are
// skipped; raw itself is not changed.
func ReadHeader(raw []byte) (textproto.Header, error) {
	return textproto.ReadHeader(bufio.NewReader(bytes.NewReader(skipBlankLines(raw))))
}

func skipBlankLines(raw []byte) []byte {
	for {
		i := 0
		for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t') {
			i++
		}
		if i == 0 || !bytes.HasPrefix(raw[i:], []byte("\r\n")) {
			return raw
		}
		raw = raw[i+2:]
	}
}
