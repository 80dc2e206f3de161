package replytext

import "strings"

// unflow joins the lines of a format=flowed body into the paragraphs the sender typed
// (RFC 3676 §4.2): a line ending in a space continues on the next. With delsp=yes (§4.1) that
// space was added by the sender's wrapping and is removed.
func unflow(text string, delsp bool) string {
	var (
		out   strings.Builder
		para  strings.Builder
		depth int
		open  bool
	)
	flush := func() {
		if depth > 0 {
			out.WriteString(strings.Repeat(">", depth))
			out.WriteByte(' ')
		}
		out.WriteString(para.String())
		out.WriteByte('\n')
		para.Reset()
		open = false
	}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSuffix(line, "\r")
		d := len(line) - len(strings.TrimLeft(line, ">"))
		// §4.4: a space at the start (after the quote marks) was stuffed in by the sender.
		content := strings.TrimPrefix(line[d:], " ")
		// §4.5: a line of another quote depth is a new paragraph, whatever the last one said.
		if open && d != depth {
			flush()
		}
		depth = d
		// §4.3: the signature separator "-- " is a fixed line, not a flowed one.
		flowed := strings.HasSuffix(content, " ") && content != "-- "
		if flowed && delsp {
			content = content[:len(content)-1]
		}
		para.WriteString(content)
		open = true
		if !flowed {
			flush()
		}
	}
	if open {
		flush()
	}
	return out.String()
}
