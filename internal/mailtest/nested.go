package mailtest

import (
	"bytes"
	"fmt"
)

// NestedMultipart returns a message of the given header (whole fields, each ending in CRLF,
// without Content-Type) whose body is levels multiparts, each the only part of the one around
// it, with a text/plain part saying text at the bottom. Each level takes about 140 bytes: 10,000
// levels make 1.4 MB.
func NestedMultipart(header string, levels int, text string) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	for i := range levels {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\n", boundary(i), boundary(i))
	}
	b.WriteString("Content-Type: text/plain\r\n\r\n" + text + "\r\n")
	for i := levels - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--%s--\r\n", boundary(i))
	}
	return b.Bytes()
}

// NestedMessage returns a message of the given header (as for NestedMultipart) that carries a
// message/rfc822 part, which carries another, levels deep, with a text/plain message saying
// text at the bottom.
func NestedMessage(header string, levels int, text string) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	for range levels {
		b.WriteString("Content-Type: message/rfc822\r\n\r\n")
	}
	b.WriteString("Content-Type: text/plain\r\n\r\n" + text + "\r\n")
	return b.Bytes()
}

func boundary(level int) string {
	return fmt.Sprintf("=_crewmail-nested-part-%06d", level)
}
