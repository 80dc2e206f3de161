package replytext

import (
	"strings"
)

// Full is the whole text of a post as a reader shows it: blocks of the author's lines and of
// quoted lines, in order, and the files that came with it.
type Full struct {
	Blocks  []Block
	Trimmed bool // a text was longer than what is read of it
	// HTML: the text was read from text/html parts (there was no text/plain one), and each
	// block's Text carries htmlpost's marks for its links and tables (htmlpost.FromMarked).
	HTML        bool
	Attachments []Attachment // in order
}

// Block is a run of lines, quoted (with the attribution line above a quote) or not.
type Block struct {
	Quoted bool
	Text   string
}

// Attachment is a file of a post and where it is in the message (mimetree.Part.Pos, in a walk
// that goes into multiparts only, as Body's does), so that a reader can fetch its bytes.
type Attachment struct {
	File
	Type string // its media type
	Pos  []int
}

// Read returns the whole text of msg split into the author's blocks and quoted ones (quotes as
// Body finds them: lines that begin with ">", with the pieces of a long quoted line broken
// without one, and the attribution line above each run), and its files. The text is that Body
// shows (the inline text/plain parts, else the text of the text/html ones); nothing is left
// out, the signature included.
func Read(msg []byte) (Full, error) {
	var w walker
	if err := w.walk(skipBlankLines(msg)); err != nil {
		return Full{}, err
	}
	kind := w.kind()
	out := Full{HTML: kind == "text/html"}
	first := true
	for _, p := range w.parts {
		if kind != "" && p.kind == kind && !p.blank && (first || p.name == "") {
			first = false
			// An HTML text's quotes are left out already (a quoteMark line stands for each).
			lines := p.lines()
			kept := lines[:0]
			for _, l := range lines {
				if l != quoteMark {
					kept = append(kept, l)
				}
			}
			out.Blocks = append(out.Blocks, fullBlocks(kept)...)
			out.Trimmed = out.Trimmed || p.long
			continue
		}
		if !p.skip && (p.kind == "" || p.name != "") {
			name := p.name
			if name == "" {
				name = "unnamed (" + p.typ + ")"
			}
			out.Attachments = append(out.Attachments, Attachment{File: File{Name: name, Size: p.size}, Type: p.typ, Pos: p.pos})
		}
	}
	return out, nil
}

// fullBlocks splits lines into runs of the author's lines and of quoted ones; an attribution line
// right above a quote goes with it. Blank lines at the edges of a block are left out.
func fullBlocks(lines []string) []Block {
	keys := make([]string, len(lines))
	for i, l := range lines {
		keys[i] = clean(l)
	}
	q := quotes(lines, keys)
	for i := range lines {
		if q[i] && (i == 0 || !q[i-1]) {
			k := i - 1
			for k >= 0 && keys[k] == "" {
				k--
			}
			if k >= 0 && !q[k] {
				if from, to := attributionAbove(keys, q, k); from <= to && to == k {
					for j := from; j <= k; j++ {
						q[j] = true
					}
				}
			}
		}
	}
	var out []Block
	start := 0
	for start < len(lines) && keys[start] == "" {
		start++
	}
	flush := func(end int) {
		text := strings.Trim(strings.Join(lines[start:end], "\n"), "\n")
		if strings.TrimSpace(text) != "" {
			out = append(out, Block{Quoted: q[start], Text: text})
		}
		start = end
	}
	for i := start + 1; i < len(lines); i++ {
		if keys[i] != "" && q[i] != q[start] {
			flush(i)
		}
	}
	if start < len(lines) {
		flush(len(lines))
	}
	return out
}
