// Package rawmsg owns reading the header of a message as it arrived over SMTP, and the
// Content-Type parameters real clients write wrongly, in the one tolerant way every package that
// looks at inbound mail shares.
package rawmsg

import (
	"bufio"
	"bytes"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// ReadHeader parses the header of raw. Lines of only spaces and tabs before it, which some
// mail software writes and which are neither a header field nor the end of the header, are
// skipped; raw itself is not changed.
func ReadHeader(raw []byte) (textproto.Header, error) {
	return textproto.ReadHeader(bufio.NewReader(bytes.NewReader(skipBlankLines(raw))))
}

// SkipBlankLines returns raw without the lines of only spaces and tabs before its header, which
// ReadHeader skips.
func SkipBlankLines(raw []byte) []byte {
	return skipBlankLines(raw)
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

// Param returns the parameter name of a Content-Type value: from params, what go-message parsed,
// when it is there. When the parameters do not parse, mostly because an unquoted value holds a
// "=" (as Outlook Express wrote boundaries) or a "/", the value is read as it stands in
// contentType: quoted, or up to a ";" or the end.
func Param(contentType string, params map[string]string, name string) string {
	if v := params[name]; v != "" {
		return v
	}
	// Lower-cased byte by byte: strings.ToLower would change the length of invalid UTF-8, and
	// the index would then not be one in contentType.
	lower := []byte(contentType)
	for i, c := range lower {
		if 'A' <= c && c <= 'Z' {
			lower[i] = c + 'a' - 'A'
		}
	}
	i := bytes.Index(lower, []byte(strings.ToLower(name)+"="))
	if i < 0 {
		return ""
	}
	v := contentType[i+len(name)+1:]
	if rest, ok := strings.CutPrefix(v, `"`); ok {
		v, _, _ = strings.Cut(rest, `"`)
		return v
	}
	v, _, _ = strings.Cut(v, ";")
	return strings.TrimSpace(v)
}
