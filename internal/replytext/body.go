package replytext

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"crewmail/internal/htmlpost"
	"crewmail/internal/mimetree"
)

// Text is what a digest shows of a post: the author's own words.
type Text struct {
	Text string // the author's text: quoted blocks, their attribution lines and the signature left out
	// Marked is the same text with its links and tables marked for htmlpost.FromMarked, when
	// it was read from HTML; "" when it was read from plain text.
	Marked string
	// Flowed: the text was read from a format=flowed part (RFC 3676), and its line breaks
	// are the ones its author typed.
	Flowed  bool
	Trimmed bool // something was left out (the archive keeps it all)
	// Quoted: what was left out is more than a signature, a list's footer or a phone's
	// "Sent from my …" line: quoted text, the original of a reply, or the end of a text too
	// long to show. A reader may want to see that; the rest is not worth a mention.
	Quoted      bool
	Attachments []File // files that came with it, in order
}

// File is an attachment: its file name and decoded size in bytes.
type File struct {
	Name string
	Size int
}

const (
	// maxSize bounds how much of one part is read to count its size. The message is in memory
	// already, so this only stops a decoder from being kept busy for nothing.
	maxSize = 100 << 20
	// quoteMark is the line that stands, in the text of an HTML part, for a quote htmlText left
	// out, so that the attribution above it goes too. No mail client writes this character of
	// Unicode's private use area.
	quoteMark = "\uE000"
)

// Body returns the author's own text of msg (a whole RFC 5322 message as archived), at most
// maxChars runes of it (cut at a line end when possible, and then Trimmed), and its attachments.
//
// Unlike Lines, Body keeps all of the author's text, also between quotes (an interleaved or a
// bottom-posted reply). It leaves out each run of quoted lines with the attribution above it,
// everything from a signature separator on, everything from where a top-posted reply's quoted
// original begins ("-----Original Message-----", Outlook's header block), and a "Sent from my
// phone" line at the end. Paragraphs stay: lines as they are with trailing space trimmed, runs of
// blank lines made one.
//
// The text is that of the inline text/plain parts, else of the inline text/html ones with
// their quotes left out: one of each multipart/alternative, but all of a multipart/mixed, where
// Apple Mail puts the text before and after an inline image in parts of their own.
//
// Of each text the first maxText bytes are read; a longer one is Trimmed. A file's size is
// counted up to maxSize.
//
// A message that is partly unreadable (a broken multipart, an unknown charset or transfer
// encoding) gives what could be read. The error is only for a header that cannot be read.
func Body(msg []byte, maxChars int) (Text, error) {
	var w walker
	if err := w.walk(skipBlankLines(msg)); err != nil {
		return Text{}, err
	}

	kind := w.kind()
	var (
		out   Text
		texts []string
		first = true
	)
	for _, p := range w.parts {
		// A text with a file name is the author's text only when it is the first: some
		// clients name the body too. After that it is a file shown inline.
		if kind != "" && p.kind == kind && !p.blank && (first || p.name == "") {
			first = false
			text, trimmed, quoted := ownText(p.lines())
			if text != "" {
				texts = append(texts, text)
			}
			out.Trimmed = out.Trimmed || trimmed || p.long
			out.Quoted = out.Quoted || quoted || p.long
			out.Flowed = out.Flowed || p.flowed()
			continue
		}
		if !p.skip && (p.kind == "" || p.name != "") {
			name := p.name
			if name == "" {
				name = "unnamed (" + p.typ + ")"
			}
			out.Attachments = append(out.Attachments, File{Name: name, Size: p.size})
		}
	}
	text, cut := cutText(strings.Join(texts, "\n\n"), maxChars)
	out.Text = text
	if kind == "text/html" {
		out.Marked, out.Text = text, plainOf(text)
	}
	out.Trimmed = out.Trimmed || cut
	out.Quoted = out.Quoted || cut
	return out, nil
}

// plainOf is marked text (htmlText's, rich) without its marks: a table's cells apart by two
// spaces.
func plainOf(marked string) string {
	marked = strings.ReplaceAll(marked, htmlpost.Cell, "  ")
	var lines []string
	for l := range strings.SplitSeq(marked, "\n") {
		if t := strings.TrimSpace(l); t == htmlpost.TableStart || t == htmlpost.TableEnd {
			l = ""
		}
		l = unmarked(l)
		if l == "" && (len(lines) == 0 || lines[len(lines)-1] == "") {
			continue // a table's marks leave no run of blank lines
		}
		lines = append(lines, l)
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n")
}

// flowed reports whether p is a format=flowed text/plain part (RFC 3676 §4.1).
func (p part) flowed() bool {
	_, params, _ := p.header.ContentType()
	return p.kind == "text/plain" && strings.EqualFold(params["format"], "flowed")
}

// part is a leaf of the message's MIME tree that Body reports: a text that may be shown, or a
// file.
type part struct {
	kind   string         // "text/plain" or "text/html" for a text that may be shown, else ""
	typ    string         // the media type
	name   string         // the file name, if the part has one
	size   int            // decoded bytes, up to maxSize
	header message.Header // a text's header, for its charset and format
	raw    []byte         // a text's first maxText bytes, with the transfer encoding undone
	blank  bool           // the text has nothing but white space
	long   bool           // the text is longer than maxText
	skip   bool           // an unnamed text of an alternative not shown: neither text nor file
	pos    []int          // where the part is in the message's MIME tree (mimetree.Part.Pos)
}

type walker struct {
	parts []part
}

// walk reads the leaves of msg's MIME tree, as mimetree finds them within its limits, into
// w.parts, and then keeps one alternative of each multipart/alternative. It does not go into a
// forwarded message (message/rfc822): that is a file of the post, not the author's text. A
// multipart broken part way gives what was read before the break.
//
// The leaves are read as they come rather than from message.Entity.Walk because an entity's
// body has its charset already converted, and a file's size is its size before that.
func (w *walker) walk(msg []byte) error {
	mw := mimetree.Walker{
		Limits:  mimetree.Default,
		Descend: func(p *mimetree.Part) bool { return strings.HasPrefix(p.Type, "multipart/") },
		Leaf:    w.leaf,
	}
	root, err := mw.Walk(msg)
	if root == nil {
		return fmt.Errorf("reading the message header: %w", err)
	}
	w.alternatives(root)
	return nil
}

// leaf reads one leaf of the message into w.parts.
func (w *walker) leaf(p *mimetree.Part, body io.Reader) error {
	if p.Broken {
		// RFC 2046 §5.1.1: without its boundary, a multipart's parts cannot be found.
		return nil
	}
	h, t := p.Header, p.Type
	// Only the transfer encoding is undone here (RFC 2045 §6); an unknown one reads as sent.
	var enc message.Header
	enc.Set("Content-Transfer-Encoding", h.Get("Content-Transfer-Encoding"))
	e, _ := message.New(enc, body)

	switch {
	case t == "message/rfc822" || t == "message/global":
		f := forwarded(e.Body)
		f.pos = p.Pos()
		w.parts = append(w.parts, f)
	case signatures[t]:
		// The signature of a multipart/signed (RFC 1847, RFC 3156, RFC 8551) is not a file the
		// author attached.
	case (t == "text/plain" || t == "text/html") && !isAttachment(h):
		raw, err := io.ReadAll(io.LimitReader(e.Body, maxText))
		part := part{kind: t, typ: t, name: fileName(h), size: len(raw), header: h, raw: raw, pos: p.Pos()}
		if err == nil {
			rest, _ := io.Copy(io.Discard, io.LimitReader(e.Body, maxSize-int64(len(raw))))
			part.size += int(rest)
			part.long = rest > 0
		}
		part.blank = len(bytes.TrimSpace(raw)) == 0
		w.parts = append(w.parts, part)
	default:
		name := fileName(h)
		// RFC 2183 §2.2: an attachment is one by its disposition; a part that is not text and
		// has a name, such as an inline image, is a file too.
		if name == "" && !isAttachment(h) {
			return nil
		}
		n, _ := io.Copy(io.Discard, io.LimitReader(e.Body, maxSize))
		w.parts = append(w.parts, part{typ: t, name: name, size: int(n), pos: p.Pos()})
	}
	return nil
}

// alternatives applies alternative to each multipart/alternative of the tree, the innermost
// first.
func (w *walker) alternatives(p *mimetree.Part) {
	for _, c := range p.Children {
		w.alternatives(c)
	}
	if p.Type != "multipart/alternative" || !p.Multipart() {
		return
	}
	// Parts are in the order of the tree: those of child i begin after all that come before
	// its position.
	pos := p.Pos()
	starts := make([]int, len(p.Children))
	for i := range p.Children {
		child := append(slices.Clone(pos), i)
		starts[i] = sort.Search(len(w.parts), func(k int) bool { return slices.Compare(w.parts[k].pos, child) >= 0 })
	}
	end := sort.Search(len(w.parts), func(k int) bool {
		return slices.Compare(w.parts[k].pos, pos) > 0 && !hasPrefix(w.parts[k].pos, pos)
	})
	w.alternative(starts, end)
}

func hasPrefix(pos, prefix []int) bool {
	return len(pos) >= len(prefix) && slices.Equal(pos[:len(prefix)], prefix)
}

// alternative keeps the texts of one alternative of a multipart/alternative (RFC 2046 §5.1.4),
// whose children's parts begin at the given indexes of parts and end before last: the first alternative with a
// text/plain, else the first with a text/html. The texts of the others are left out, or are
// files if they have a name; their files stay.
func (w *walker) alternative(starts []int, last int) {
	end := func(c int) int {
		if c+1 < len(starts) {
			return starts[c+1]
		}
		return last
	}
	keep := -1
find:
	for _, kind := range []string{"text/plain", "text/html"} {
		for c, start := range starts {
			for _, p := range w.parts[start:end(c)] {
				if p.kind == kind && !p.blank {
					keep = c
					break find
				}
			}
		}
	}
	for c, start := range starts {
		if c == keep {
			continue
		}
		for i := start; i < end(c); i++ {
			if p := &w.parts[i]; p.kind != "" {
				p.kind, p.raw, p.skip = "", nil, p.name == ""
			}
		}
	}
}

// kind returns the kind of text shown: text/plain when there is one that is not blank, else
// text/html when there is such a one, else "".
func (w *walker) kind() string {
	for _, kind := range []string{"text/plain", "text/html"} {
		for _, p := range w.parts {
			if p.kind == kind && !p.blank {
				return kind
			}
		}
	}
	return ""
}

// lines returns the text of p as lines: charset decoded, flowed lines joined, HTML rendered.
func (p part) lines() []string {
	_, params, _ := p.header.ContentType()
	// Only the charset is converted here; the transfer encoding was undone in walk.
	var ct message.Header
	ct.Set("Content-Type", p.header.Get("Content-Type"))
	e, _ := message.New(ct, bytes.NewReader(p.raw)) // an unknown charset reads as sent
	b, _ := io.ReadAll(e.Body)
	text := strings.ToValidUTF8(string(b), "\uFFFD")

	if p.kind == "text/html" {
		lines := splitLines(htmlText(markQuotes([]byte(text)), true))
		for i, l := range lines {
			// A browser shows each run of white space as one space.
			lines[i] = clean(l)
		}
		return lines
	}
	if strings.EqualFold(params["format"], "flowed") {
		text = unflow(text, strings.EqualFold(params["delsp"], "yes"))
	}
	return splitLines(text)
}

func splitLines(text string) []string {
	text = strings.TrimPrefix(text, "\uFEFF")
	return strings.Split(strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(text), "\n")
}

// signatures are the media types of the signature part of a signed message.
var signatures = map[string]bool{
	"application/pgp-signature":     true,
	"application/pkcs7-signature":   true,
	"application/x-pkcs7-signature": true,
}

// fileName returns the name a part gives its file: the filename of its Content-Disposition,
// else the name of its Content-Type (go-message decodes RFC 2231 and RFC 2047 in both).
func fileName(h message.Header) string {
	_, params, _ := h.ContentDisposition()
	name := params["filename"]
	if name == "" {
		_, params, _ = h.ContentType()
		name = params["name"]
	}
	// Some clients send the path the file had on the sender's disk.
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(name, "\uFFFD"))
	return clean(name)
}

// forwarded returns a message/rfc822 part as a file named after the subject of the message it
// holds, with the size of that message.
func forwarded(body io.Reader) part {
	c := &counter{r: io.LimitReader(body, maxSize)}
	r := bufio.NewReader(c)
	var subject string
	if h, err := textproto.ReadHeader(r); err == nil {
		mh := message.Header{Header: h}
		// An unknown charset gives the subject as written, which is still something to show.
		subject, _ = mh.Text("Subject")
	}
	_, _ = io.Copy(io.Discard, r) // reading only to count
	name := "forwarded message"
	if s := clean(strings.ToValidUTF8(subject, "\uFFFD")); s != "" {
		name += ": " + s
	}
	return part{typ: "message/rfc822", name: name, size: c.n}
}

type counter struct {
	r io.Reader
	n int
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// markQuotes returns body with a quoteMark line before each element htmlText leaves out as
// quoted (and before Outlook's original, where htmlText stops), and a signature separator
// before a Gmail signature, so that ownText can treat them as it treats plain text.
func markQuotes(body []byte) []byte {
	var out bytes.Buffer
	z := html.NewTokenizer(bytes.NewReader(body))
	for {
		tt := z.Next()
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			out.Write(z.Raw())
			if tt == html.ErrorToken {
				return out.Bytes()
			}
			continue
		}
		raw := bytes.Clone(z.Raw()) // z.Token may change what z.Raw returned
		t := z.Token()
		switch {
		case startsOriginal(t), hidden(t) && !unseen[t.DataAtom] && !void[t.DataAtom]:
			out.WriteString("<br>" + quoteMark + "<br>")
		case strings.Contains(attr(t, "class"), "gmail_signature"):
			out.WriteString("<br>-- <br>")
		}
		out.Write(raw)
	}
}

// unseen are the elements hidden leaves out because a reader never sees them, not because
// they quote.
var unseen = map[atom.Atom]bool{
	atom.Style: true, atom.Script: true, atom.Head: true, atom.Title: true, atom.Template: true,
}

// ownText returns the author's own lines of a text as one string, whether anything was left
// out, and whether that was more than a signature, a list's footer or a phone's line (quoted).
func ownText(lines []string) (text string, trimmed, quoted bool) {
	keys := make([]string, len(lines)) // cleaned and without marks, for the rules
	for i, l := range lines {
		if strings.ContainsFunc(l, isMark) {
			l = unmarked(l)
		}
		keys[i] = clean(l)
	}
	lower := func(i int) string {
		if i < 0 || i >= len(keys) {
			return ""
		}
		return strings.ToLower(keys[i])
	}
	q := quotes(lines, keys)

	// Where the author's text ends: a signature, or the original of a top-posted reply. The
	// original counts only below some text of the author's: at the top, "From:" and "Date:"
	// are a patch's own header or an attribution.
	end, own := len(lines), false
	for i := range lines {
		if keys[i] == "" || q[i] {
			continue
		}
		if keys[i] == "--" { // "-- ", RFC 3676 §4.3, trimmed; some clients drop the space
			end = i
			break
		}
		if isRule(keys[i]) {
			if listFooter(lower, i) {
				end = i
				break
			}
			continue
		}
		if originalMessage.MatchString(keys[i]) || outlookHeader(lower, i) {
			if !own {
				continue // a forward, with nothing of the author's above it
			}
			end, quoted = i, true
			// Outlook draws a rule of underscores above its header block.
			for end > 0 && (keys[end-1] == "" || isRule(keys[end-1])) {
				end--
			}
			break
		}
		own = true
	}
	if end < len(lines) {
		trimmed = true
	}

	// Each run of quoted lines goes, and with it the attribution above it.
	drop := make([]bool, end)
	for i := range end {
		if !q[i] {
			continue
		}
		drop[i], trimmed, quoted = true, true, true
		if i > 0 && drop[i-1] {
			continue // inside a run
		}
		k := i - 1
		for k >= 0 && keys[k] == "" {
			k--
		}
		if k < 0 || drop[k] {
			continue
		}
		from, to := attributionAbove(keys, q, k)
		for j := from; j <= to; j++ {
			drop[j] = true
		}
	}

	var kept []int
	for i := range end {
		if !drop[i] {
			kept = append(kept, i)
		}
	}
	// A phone's or a webmail's line at the end.
	for len(kept) > 0 {
		i := kept[len(kept)-1]
		if keys[i] != "" && !sentFrom(lower(i)) {
			break
		}
		if keys[i] != "" {
			trimmed = true
		}
		kept = kept[:len(kept)-1]
	}

	var b strings.Builder
	blank := false
	for _, i := range kept {
		if keys[i] == "" {
			blank = b.Len() > 0
			continue
		}
		if blank {
			b.WriteByte('\n')
			blank = false
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(strings.TrimRightFunc(lines[i], unicode.IsSpace))
	}
	return b.String(), trimmed, quoted
}

// quotes reports which lines are quoted. Besides the lines that begin with ">", these are the
// pieces of a long quoted line that a client broke without putting ">" before the rest: up to
// two short lines right between quoted lines, below one nearly as long as mail is wrapped.
func quotes(lines, keys []string) []bool {
	q := make([]bool, len(lines))
	for i, l := range lines {
		q[i] = quoted(l)
	}
	for i := 1; i < len(lines); i++ {
		if !q[i-1] || q[i] || utf8.RuneCountInString(lines[i-1]) < 60 {
			continue
		}
		j := i
		for j < len(lines) && j < i+2 && !q[j] && keys[j] != "" && utf8.RuneCountInString(keys[j]) < 40 {
			j++
		}
		if j > i && j < len(lines) && q[j] {
			for k := i; k < j; k++ {
				q[k] = true
			}
		}
	}
	return q
}

// quoted reports whether l is a quoted line, or stands for a quote left out of HTML.
func quoted(l string) bool {
	return strings.HasPrefix(strings.TrimLeft(l, " \t"), ">") || l == quoteMark
}

// isRule reports whether s is a line of underscores, as Outlook draws above the original.
func isRule(s string) bool {
	return len(s) >= 2 && strings.Trim(s, "_") == ""
}

// listFooter reports whether the rule of underscores at line i begins the footer a mailing list
// (Mailman) added: the next line that is not blank names the list.
func listFooter(lower func(int) string, i int) bool {
	for j := i + 1; j <= i+2; j++ {
		if l := lower(j); l != "" {
			return strings.HasSuffix(l, "mailing list")
		}
	}
	return false
}

// outlookHeader reports whether line i begins Outlook's header block of the original: From:,
// then Sent: or Date: within three lines.
func outlookHeader(lower func(int) string, i int) bool {
	if !strings.HasPrefix(lower(i), "from:") {
		return false
	}
	for j := i + 1; j <= i+3; j++ {
		if next := lower(j); strings.HasPrefix(next, "sent:") || strings.HasPrefix(next, "date:") {
			return true
		}
	}
	return false
}

// attributionAbove returns the lines from..to, ending at k, that say who wrote the quote below
// line k; from > to when line k is the author's own.
func attributionAbove(keys []string, q []bool, k int) (from, to int) {
	lower := strings.ToLower(keys[k])
	if attribution(lower) {
		return k, k
	}
	// Clients wrap a long attribution: "On <date>, <name>" and "<address> wrote:". The first
	// line has a digit, of the date, so that a sentence of the author's above "Bob wrote:" stays.
	if k > 0 && keys[k-1] != "" && !q[k-1] && strings.ContainsAny(keys[k-1], "0123456789") &&
		attribution(strings.ToLower(keys[k-1])+" "+lower) {
		return k - 1, k
	}
	if leadsQuote(lower) {
		return k, k
	}
	// A header block: "From: ...", "Date: ..." above the quote, as some people write it.
	header := func(s string) bool {
		name, _, ok := strings.Cut(s, ":")
		return ok && name != "" && !strings.ContainsAny(name, " \t")
	}
	for j := k; j >= 0 && j > k-6 && keys[j] != "" && !q[j] && header(keys[j]); j-- {
		if strings.HasPrefix(strings.ToLower(keys[j]), "from:") {
			for m := j + 1; m <= k; m++ {
				l := strings.ToLower(keys[m])
				if strings.HasPrefix(l, "date:") || strings.HasPrefix(l, "sent:") {
					return j, k
				}
			}
		}
	}
	return k + 1, k
}

// leadsQuote reports whether lower, a lower-cased line right above quoted text, says who wrote
// it. Right above a quote more forms count than Lines knows: "Name <address> wrote:",
// "* Name writes:", "Name wrote on <date>:", "Excerpts from ...:", "Quoting ...:".
func leadsQuote(lower string) bool {
	if attribution(lower) {
		return true
	}
	lower, ok := strings.CutSuffix(lower, ":")
	if !ok {
		return false
	}
	return strings.HasPrefix(lower, "excerpts from ") || strings.HasPrefix(lower, "quoting ") ||
		wrote.MatchString(lower)
}

var wrote = regexp.MustCompile(`(^|\W)(wrote|writes|a écrit|schrieb|escribió)(\W|$)`)

// sentFrom reports whether lower, a lower-cased line, is what a phone or a webmail adds at the
// end of what the author wrote.
func sentFrom(lower string) bool {
	if utf8.RuneCountInString(lower) > 60 {
		return false
	}
	for _, p := range []string{"sent from my ", "sent from outlook", "sent from mail for windows",
		"sent from yahoo mail", "get outlook for ", "envoyé de mon ", "enviado desde mi "} {
		if strings.HasPrefix(lower, p) {
			return true
		}
	}
	return strings.HasPrefix(lower, "von meinem ") && strings.HasSuffix(lower, " gesendet")
}

// cutText returns text cut to at most max runes, and whether it was cut. It cuts at a line end
// when that keeps at least half of max, else at a space, else inside a word.
func cutText(text string, max int) (string, bool) {
	if utf8.RuneCountInString(text) <= max {
		return text, false
	}
	if max <= 0 {
		return "", true
	}
	end, n := len(text), 0
	for i := range text {
		if n == max {
			end = i
			break
		}
		n++
	}
	head := text[:end]
	if text[end] != '\n' {
		for _, sep := range []string{"\n", " "} {
			if i := strings.LastIndex(head, sep); i > 0 && utf8.RuneCountInString(head[:i]) >= max/2 {
				head = head[:i]
				break
			}
		}
	}
	return strings.TrimRightFunc(head, unicode.IsSpace), true
}

// unmarked is a line of marked text as a reader sees it: a link's URL and the marks out.
func unmarked(l string) string {
	if t := strings.TrimSpace(l); t == htmlpost.TableStart || t == htmlpost.TableEnd {
		return t // not blank: where a table starts and ends stays in the text
	}
	if !strings.Contains(l, htmlpost.LinkStart) && !strings.Contains(l, htmlpost.Cell) {
		return htmlpost.Clean(l)
	}
	var b strings.Builder
	for {
		i := strings.Index(l, htmlpost.LinkStart)
		if i < 0 {
			break
		}
		j := strings.Index(l[i:], htmlpost.LinkText)
		if j < 0 {
			break
		}
		b.WriteString(l[:i])
		l = l[i+j+len(htmlpost.LinkText):]
	}
	b.WriteString(l)
	return htmlpost.Clean(strings.ReplaceAll(b.String(), htmlpost.Cell, " "))
}

// isMark reports whether r is one of htmlpost's marks (U+E001 to U+E00F).
func isMark(r rune) bool { return r >= 0xE001 && r <= 0xE00F }
