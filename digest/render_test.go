package digest

import (
	"bytes"
	"flag"
	"fmt"
	"html"
	"html/template"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"

	"crewmail/internal/htmlpost"
	"crewmail/internal/listcopy"
	"crewmail/templates"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var cet = time.FixedZone("CET", 3600)

// hfield percent-encodes a mailto header field value (RFC 6068 §2) well enough for the test.
var hfield = strings.NewReplacer(" ", "%20", ":", "%3A", "?", "%3F", "&", "%26")

// garden is a realistic daily digest: three conversations (one new), seven messages, a
// non-ASCII author, verified and unverified authors, trimmed quotes and attachments.
func garden() Digest { return filled(gardenPlain()) }

// gardenPlain is garden before filled.
func gardenPlain() Digest {
	reply := func(token, subject string) string {
		return "mailto:crew+r-" + token + "@lists.example.org?subject=" + hfield.Replace("Re: "+subject)
	}
	tomatoes, seeds, compost := "Tomatoes splitting after the rain", "Seed swap on Saturday?", "Compost bin lid is broken"
	return Digest{
		List: "crew@lists.example.org", ListName: "Garden crew", Period: "daily",
		Title:   "Daily digest: 3 conversations, 7 messages",
		Subject: "[Garden crew] Daily digest: 3 conversations, 7 messages",
		Threads: []Thread{
			{
				Anchor: "t41", Subject: tomatoes, Participants: []string{"Jürgen Müller", "Ann Baker", "tom@example.net"},
				Count: 3, Mute: "mailto:crew+mute-k2p9@lists.example.org",
				Messages: []Message{
					{Seq: 101, Author: "Jürgen Müller", Address: "juergen@example.de", Verified: true, Time: "Tue 24 Nov 18:12",
						Text:  "After Sunday's downpour half of my Moneymakers split open.\nIs it the rain itself, or the dry week before it?",
						Reply: reply("a1", tomatoes)},
					{Seq: 103, Author: "Ann Baker", Address: "ann@example.org", Verified: true, Time: "Tue 24 Nov 19:40",
						Text:    "Both, really: the fruit swells faster than the skin can stretch.\nWater a little every day rather than a lot once a week, and mulch.",
						Trimmed: true, Reply: reply("a3", tomatoes)},
					{Seq: 106, Author: "tom@example.net", Address: "tom@example.net", Time: "Wed 25 Nov 07:05",
						Text:  "Mine did the same. The split ones make a fine sauce though.",
						Reply: reply("a6", tomatoes)},
				},
			},
			{
				Anchor: "t44", Subject: seeds, New: true, Participants: []string{"Priya Raman", "Ann Baker"},
				Count: 2, Mute: "mailto:crew+mute-x7c3@lists.example.org",
				Messages: []Message{
					{Seq: 104, Author: "Priya Raman", Address: "priya@example.com", Verified: true, Time: "Tue 24 Nov 20:02",
						Text:  "Shall we swap seeds at the shed on Saturday at 10?\n\nI have too many runner beans and a packet of Cherokee Purple.",
						Reply: reply("a4", seeds)},
					{Seq: 105, Author: "Ann Baker", Address: "ann@example.org", Verified: true, Time: "Tue 24 Nov 21:30",
						Text:  "Yes please. I'll bring chard and calendula.",
						Reply: reply("a5", seeds)},
				},
			},
			{
				Anchor: "t39", Subject: compost, Participants: []string{"Ann Baker", "Jürgen Müller"},
				Count: 2, Mute: "mailto:crew+mute-q4m1@lists.example.org",
				Messages: []Message{
					{Seq: 102, Author: "Ann Baker", Address: "ann@example.org", Verified: true, Time: "Tue 24 Nov 18:55",
						Text:        "The hinge on the left bin finally gave way. Photos attached;\nthe lid is in the shed for now.",
						Attachments: []Attachment{{Name: "hinge.jpg", Size: "240 KB"}, {Name: "lid-measurements.pdf", Size: "18 KB"}},
						Reply:       reply("a2", compost)},
					{Seq: 107, Author: "Jürgen Müller", Address: "juergen@example.de", Verified: true, Time: "Wed 25 Nov 07:48",
						Text:  "I can make a new hinge from an old gate strap. Bring it to the swap?",
						Reply: reply("a7", compost)},
				},
			},
		},
		Messages: 7,
		NewPost:  "mailto:crew@lists.example.org",
		Help:     "crew+help@lists.example.org", Each: "crew+each@lists.example.org", Leave: "crew+unsubscribe@lists.example.org",
		Since: time.Date(2026, 11, 24, 18, 12, 0, 0, cet), Until: time.Date(2026, 11, 25, 8, 0, 0, 0, cet), Zone: "Europe/Berlin",
	}
}

// filled gives each message of d what readPost gives it besides its Text: its HTML, and the
// bare address of its Reply link.
func filled(d Digest) Digest {
	for i := range d.Threads {
		for j := range d.Threads[i].Messages {
			m := &d.Threads[i].Messages[j]
			if m.HTML == "" {
				m.HTML = template.HTML(htmlpost.Style(htmlpost.FromText(m.Text, false).HTML, postStyles))
			}
			if m.ReplyTo == "" {
				m.ReplyTo, _, _ = strings.Cut(strings.TrimPrefix(m.Reply, "mailto:"), "?")
			}
		}
	}
	return d
}

var addresses = Addresses{
	From: "crew@lists.example.org", ReplyTo: "crew+digest@lists.example.org", To: "crew@lists.example.org",
	List: listcopy.Block{Name: "Garden crew", Address: "crew@lists.example.org", Post: true,
		Help: "crew+help@lists.example.org", Unsubscribe: "crew+unsubscribe@lists.example.org", Precedence: true},
}

func newRenderer(t *testing.T) *Renderer {
	t.Helper()
	tpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	return &Renderer{
		Templates: tpl, Hostname: "lists.example.org",
		Now:   func() time.Time { return time.Date(2026, 11, 25, 8, 0, 3, 0, cet) },
		NewID: func() string { n++; return fmt.Sprintf("digest-%d@lists.example.org", n) },
	}
}

// golden compares got with testdata/name; -update rewrites it.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update to accept):\n%s", path, firstDifference(string(want), string(got)))
	}
}

func firstDifference(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n- %q\n+ %q", i+1, w, g)
		}
	}
	return "(same lines)"
}

// TestDigestTemplatesReadOnlyDigestFields: every field the digest's text and HTML templates
// read, on every branch, is one Digest has.
func TestDigestTemplatesReadOnlyDigestFields(t *testing.T) {
	tpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	if err := tpl.Check("digest", Digest{}); err != nil {
		t.Fatal(err)
	}
}

func TestGolden(t *testing.T) {
	r := newRenderer(t)
	text, err := r.Text(garden())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "digest.txt.golden", []byte(text))
	page, err := r.HTML(garden())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "digest.html.golden", []byte(page))
	msgs, err := r.Build(garden(), addresses)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	golden(t, "digest.eml.golden", msgs[0])
}

// part is one body of a built digest.
type part struct {
	typ, charset, body string
}

// parse reads a built digest back with go-message: its header and its alternatives.
// unflow joins format=flowed; delsp=yes text (RFC 3676 §4.2, §4.4) as a reader does.
func unflow(text string) string {
	var b strings.Builder
	for l := range strings.SplitSeq(strings.TrimSuffix(text, "\n"), "\n") {
		l = strings.TrimPrefix(l, " ")
		if strings.HasSuffix(l, " ") && l != "-- " {
			b.WriteString(l[:len(l)-1])
			continue
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

func parse(t *testing.T, msg []byte) (mail.Header, []part) {
	t.Helper()
	if i := bytes.IndexByte(bytes.ReplaceAll(msg, []byte("\r\n"), nil), '\n'); i >= 0 {
		t.Fatalf("bare LF in the message")
	}
	mr, err := mail.CreateReader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if typ, _, err := mr.Header.ContentType(); err != nil || typ != "multipart/alternative" {
		t.Fatalf("Content-Type %s %v", typ, err)
	}
	var parts []part
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		h, ok := p.Header.(*mail.InlineHeader)
		if !ok {
			t.Fatalf("part %T is not inline", p.Header)
		}
		if enc := h.Get("Content-Transfer-Encoding"); enc != "quoted-printable" {
			t.Errorf("Content-Transfer-Encoding %q", enc)
		}
		typ, params, err := h.ContentType()
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatal(err)
		}
		// The wire has CRLF line endings; the texts compared with have LF.
		text := strings.ReplaceAll(string(body), "\r\n", "\n")
		if typ == "text/plain" {
			if params["format"] != "flowed" || params["delsp"] != "yes" {
				t.Errorf("the text part is not format=flowed; delsp=yes: %v", params)
			}
			for l := range strings.SplitSeq(strings.TrimSuffix(text, "\n"), "\n") {
				if n := utf8.RuneCountInString(l); n > 78 {
					t.Errorf("a line of %d characters in the text part: %q", n, l)
				}
			}
			text = unflow(text) // as a reader's mail program shows it
		}
		parts = append(parts, part{typ, params["charset"], text})
	}
	return mr.Header, parts
}

func TestBuildReadsBack(t *testing.T) {
	r := newRenderer(t)
	d := garden()
	msgs, err := r.Build(d, addresses)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%d messages, %v", len(msgs), err)
	}
	h, parts := parse(t, msgs[0])
	for key, want := range map[string]string{
		"From": `"Garden crew" <crew@lists.example.org>`, "To": "<crew@lists.example.org>",
		"Reply-To": "<crew+digest@lists.example.org>", "Subject": d.Subject,
		"Message-Id": "<digest-1@lists.example.org>", "Mime-Version": "1.0",
		"List-Id": "Garden crew <crew.lists.example.org>", "List-Post": "<mailto:crew@lists.example.org>",
		"List-Help": "<mailto:crew+help@lists.example.org>", "List-Unsubscribe": "<mailto:crew+unsubscribe@lists.example.org>",
		"Precedence": "list", "Auto-Submitted": "auto-generated",
		"Date": "Wed, 25 Nov 2026 08:00:03 +0100",
	} {
		if got := h.Get(key); got != want {
			t.Errorf("%s: %q, want %q", key, got, want)
		}
	}
	if len(parts) != 2 || parts[0].typ != "text/plain" || parts[1].typ != "text/html" {
		t.Fatalf("parts: %+v", parts)
	}
	for _, p := range parts {
		if p.charset != "utf-8" {
			t.Errorf("%s: charset %q", p.typ, p.charset)
		}
	}
	text, page := parts[0].body, parts[1].body
	// html/template writes "+" as "&#43;"; compare links as a browser reads them.
	links := html.UnescapeString(page)
	for _, th := range d.Threads {
		for _, want := range []string{th.Subject, "Mute this conversation: " + th.Mute} {
			if !strings.Contains(text, want) {
				t.Errorf("text part lacks %q", want)
			}
		}
		if !strings.Contains(links, `href="`+th.Mute+`"`) || !strings.Contains(page, `id="`+th.Anchor+`"`) || !strings.Contains(page, `href="#`+th.Anchor+`"`) {
			t.Errorf("HTML part lacks the mute link or the anchors of %s", th.Anchor)
		}
		for _, m := range th.Messages {
			if !strings.Contains(text, m.Text) || !strings.Contains(text, "Reply: "+m.ReplyTo+"\n") {
				t.Errorf("text part lacks message %d or its Reply link", m.Seq)
			}
			if !strings.Contains(links, `href="`+m.Reply+`"`) {
				t.Errorf("HTML part lacks the Reply link of message %d", m.Seq)
			}
		}
	}
	for _, want := range []string{"Jürgen Müller <juergen@example.de> ✓", "tom@example.net — Wed 25 Nov 07:05", "\n…\n",
		"Attachment: hinge.jpg (240 KB)", "Attachment: lid-measurements.pdf (18 KB)", "[new]",
		"Garden crew — daily digest, Wednesday 25 November 2026"} {
		if !strings.Contains(text, want) {
			t.Errorf("text part lacks %q", want)
		}
	}
	for _, bad := range []string{"http://", "https://", "src=", "<script", "<link", "<img", "url("} {
		if strings.Contains(strings.ToLower(page), bad) {
			t.Errorf("HTML part has %q", bad)
		}
	}
	if n := strings.Count(page, `aria-label="verified sender"`); n != 6 {
		t.Errorf("%d verified marks, want 6", n)
	}
}

func TestNonASCIISubjectIsEncoded(t *testing.T) {
	r := newRenderer(t)
	d := garden()
	d.ListName, d.Subject = "Gärten", "[Gärten] Daily digest: 3 conversations, 7 messages"
	msgs, err := r.Build(d, addresses)
	if err != nil {
		t.Fatal(err)
	}
	raw, _, _ := bytes.Cut(msgs[0], []byte("\r\n\r\n"))
	for _, b := range raw {
		if b >= 0x80 {
			t.Fatalf("8-bit byte in the header:\n%s", raw)
		}
	}
	h, _ := parse(t, msgs[0])
	if s, err := h.Subject(); err != nil || s != d.Subject {
		t.Errorf("Subject %q %v", s, err)
	}
	if from, err := h.AddressList("From"); err != nil || len(from) != 1 || from[0].Name != "Gärten" {
		t.Errorf("From %v %v", from, err)
	}
}

func TestHTMLEscapesPosts(t *testing.T) {
	r := newRenderer(t)
	d := garden()
	d.Threads[0].Subject = "Tags <i>in</i> subjects"
	d.Threads[0].Messages[0].Author = `Eve "<script>" Smith`
	d.Threads[0].Messages[0].Text = "Use <b>bold</b> & see.\n<script>alert(1)</script>"
	d.Threads[0].Messages[0].HTML = ""
	d.Threads[0].Messages[0].Reply = "javascript:alert(1)"
	page, err := r.HTML(filled(d))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Use &lt;b&gt;bold&lt;/b&gt; &amp; see.<br>&lt;script&gt;", "Tags &lt;i&gt;in&lt;/i&gt; subjects", `href="#ZgotmplZ"`} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, bad := range []string{"<b>", "<i>", "<script", "javascript:"} {
		if strings.Contains(page, bad) {
			t.Errorf("HTML has %q", bad)
		}
	}
}

// big is a digest of many threads, one of them much larger than the rest.
func big() Digest {
	d := garden()
	d.Title = "Daily digest: 8 conversations, 45 messages"
	d.Subject = "[Garden crew] " + d.Title
	d.Threads = nil
	seq := uint64(0)
	for i := range 8 {
		n := 3
		if i == 5 {
			n = 24
		}
		th := Thread{Anchor: fmt.Sprintf("t%d", i+1), Subject: fmt.Sprintf("Conversation %d", i+1), New: i%3 == 0,
			Count: n, Mute: fmt.Sprintf("mailto:crew+mute-%d@lists.example.org", i+1)}
		for j := range n {
			seq++
			author := []string{"Ann Baker", "Jürgen Müller", "tom@example.net"}[j%3]
			if j < 3 {
				th.Participants = append(th.Participants, author)
			}
			th.Messages = append(th.Messages, Message{
				Seq: seq, Author: author, Verified: j%3 != 2, Time: "Wed 25 Nov 07:05",
				Text:  fmt.Sprintf("Message %d says something about beans.\n%s", seq, strings.Repeat("Runner beans climb. ", 30)),
				Reply: fmt.Sprintf("mailto:crew+r-%d@lists.example.org?subject=Re%%3A%%20Conversation%%20%d", seq, i+1),
			})
		}
		d.Threads = append(d.Threads, th)
	}
	return filled(d)
}

// TestSplitKeepsEachConversationInOnePart: a digest whose HTML is four times what a part may
// hold goes out in parts, each under the limit, each conversation in exactly one of them, the
// one conversation too large for a part cut short with a note, and every part's contents
// naming every conversation and the part it is in.
func TestSplitKeepsEachConversationInOnePart(t *testing.T) {
	r := newRenderer(t)
	d := big()
	page, err := r.HTML(d)
	if err != nil {
		t.Fatal(err)
	}
	r.MaxHTMLBytes = len(page) / 4
	msgs, err := r.Build(d, addresses)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 4 {
		t.Fatalf("%d parts for a limit of a quarter", len(msgs))
	}
	var texts, pages strings.Builder
	ids := map[string]bool{}
	for i, m := range msgs {
		h, parts := parse(t, m)
		subject, _ := h.Subject()
		if want := fmt.Sprintf("%s (part %d of %d)", d.Subject, i+1, len(msgs)); subject != want {
			t.Errorf("subject %q, want %q", subject, want)
		}
		id, _ := h.MessageID()
		if ids[id] {
			t.Errorf("Message-ID %s twice", id)
		}
		ids[id] = true
		if n := len(parts[1].body); n > r.MaxHTMLBytes {
			t.Errorf("part %d: HTML of %d bytes, over %d", i+1, n, r.MaxHTMLBytes)
		}
		if want := fmt.Sprintf("part %d of %d", i+1, len(msgs)); !strings.Contains(parts[0].body, want) || !strings.Contains(parts[1].body, want) {
			t.Errorf("part %d does not say %q", i+1, want)
		}
		for _, th := range d.Threads {
			if !strings.Contains(parts[0].body, ". "+th.Subject) || !strings.Contains(parts[1].body, th.Subject) {
				t.Errorf("the contents of part %d do not name %q", i+1, th.Subject)
			}
		}
		if i > 0 && !strings.Contains(parts[0].body, "(in part 1)") {
			t.Errorf("the contents of part %d do not say what is in part 1", i+1)
		}
		texts.WriteString(parts[0].body)
		pages.WriteString(html.UnescapeString(parts[1].body))
	}
	cut := 0
	for _, th := range d.Threads {
		if n := strings.Count(pages.String(), `id="`+th.Anchor+`"`); n != 1 {
			t.Errorf("conversation %s in %d parts", th.Anchor, n)
		}
		for k, m := range th.Messages {
			n := strings.Count(texts.String(), "Reply: "+m.ReplyTo+"\n")
			if n != strings.Count(pages.String(), `href="`+m.Reply+`"`) {
				t.Errorf("message %d: text and HTML parts differ", m.Seq)
			}
			switch {
			case n > 1:
				t.Errorf("message %d in %d parts", m.Seq, n)
			case n == 0 && k == 0:
				t.Errorf("the first message of %s is in no part", th.Anchor)
			case n == 0:
				cut++
			}
		}
	}
	if cut == 0 || !strings.Contains(texts.String(), fmt.Sprintf("… %d more messages of this conversation did not fit in this digest", cut)) {
		t.Errorf("%d messages cut, and no note saying so", cut)
	}
}

// TestTwoHundredMessages: a day of 200 messages in 40 conversations, at the default limits,
// goes out in parts whose HTML is each under 100,000 bytes, every conversation whole in one.
func TestTwoHundredMessages(t *testing.T) {
	r := newRenderer(t)
	d := garden()
	d.Threads = nil
	for i := range 40 {
		th := Thread{Anchor: fmt.Sprintf("t%d", i+1), Subject: fmt.Sprintf("Conversation %d", i+1), Count: 5,
			Participants: []string{"Ann Baker"}, Mute: "mailto:crew+mute-x@lists.example.org"}
		for j := range 5 {
			seq := i*5 + j + 1
			th.Messages = append(th.Messages, Message{Seq: uint64(seq), Author: "Ann Baker", Address: "ann@example.org", Time: "Wed 25 Nov 07:05",
				Text:  fmt.Sprintf("Message %d.\n%s", seq, strings.Repeat("Beans climb the poles we set; the frost came late this year. ", 12)),
				Reply: fmt.Sprintf("mailto:crew+r-%d@lists.example.org?subject=Re%%3A%%20C", seq)})
		}
		d.Threads = append(d.Threads, th)
	}
	d = filled(d)
	msgs, err := r.Build(d, addresses)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 2 {
		t.Fatalf("200 messages in %d part", len(msgs))
	}
	in := map[string]int{}
	for i, m := range msgs {
		_, parts := parse(t, m)
		if n := len(parts[1].body); n >= 100000 {
			t.Errorf("part %d of %d: HTML of %d bytes", i+1, len(msgs), n)
		}
		for _, th := range d.Threads {
			if strings.Contains(parts[1].body, `id="`+th.Anchor+`"`) {
				in[th.Anchor]++
			}
		}
		for _, th := range d.Threads {
			for _, msg := range th.Messages {
				if strings.Contains(parts[0].body, "Reply: "+msg.ReplyTo+"\n") && in[th.Anchor] == 0 {
					t.Errorf("message %d outside its conversation", msg.Seq)
				}
			}
		}
	}
	for _, th := range d.Threads {
		if in[th.Anchor] != 1 {
			t.Errorf("conversation %s in %d parts", th.Anchor, in[th.Anchor])
		}
	}
	t.Logf("200 messages in %d parts", len(msgs))
}

// TestSplitSingleLargeMessage: a message larger than the limit goes out alone, whole.
func TestSplitSingleLargeMessage(t *testing.T) {
	r := newRenderer(t)
	d := garden()
	d.Threads[1].Messages[0].Text = strings.Repeat("A very long message about seeds. ", 2000)
	d.Threads[1].Messages[0].HTML = ""
	r.MaxBytes = 30000
	msgs, err := r.Build(filled(d), addresses)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 2 {
		t.Fatalf("%d parts", len(msgs))
	}
	found := 0
	for _, m := range msgs {
		_, parts := parse(t, m)
		found += strings.Count(parts[0].body, strings.TrimSpace(d.Threads[1].Messages[0].Text))
	}
	if found != 1 {
		t.Errorf("the long message is in %d parts", found)
	}
}

// TestShrink: a part that renders too large despite the estimates splits between its threads,
// then shows one message fewer of its one thread, and never fewer than one.
func TestShrink(t *testing.T) {
	d := garden()
	ps := wholes(d.Threads)
	got, ok := shrink([][]piece{ps}, 0)
	if !ok || len(got) != 2 || len(got[0]) != 1 || len(got[1]) != 2 {
		t.Fatalf("three threads: %v %v", got, ok)
	}
	got, ok = shrink(got, 0)
	if !ok || len(got) != 2 || got[0][0].to != 2 {
		t.Fatalf("one thread of three messages: %+v %v", got, ok)
	}
	if th := got[0][0].thread(); th.Omitted != 1 || len(th.Messages) != 2 || th.Subject != d.Threads[0].Subject {
		t.Errorf("the thread cut short: %+v", th)
	}
	got, _ = shrink(got, 0)
	if _, ok := shrink(got, 0); ok {
		t.Error("a single message was taken away")
	}
}

// TestGoldenWithWebLinks: with the web reader ([http] base_url), each conversation's heading
// links to it (a "Read online" line in the text part), each attachment to its download, the
// "…" of a trimmed message to the whole of it, and the footer to the reader through the mark
// lists.Compose replaces with each member's sign-in link; the text part's lines stay within
// 78 columns.
func TestGoldenWithWebLinks(t *testing.T) {
	r := newRenderer(t)
	base := "https://lists.example.org"
	w := Web{
		Conversation: func(list string, thread uint64) string { return fmt.Sprintf("%s/l/%s/t/%d", base, list, thread) },
		Message:      func(list string, seq uint64) string { return fmt.Sprintf("%s/l/%s/m/%d", base, list, seq) },
		Attachment: func(list string, seq uint64, n int, name string) string {
			return fmt.Sprintf("%s/l/%s/m/%d/a/%d/%s", base, list, seq, n, url.PathEscape(name))
		},
		SignIn: true,
	}
	d := garden()
	for i := range d.Threads {
		d.Threads[i].Number = uint64(i + 1)
	}
	w.link(&d)
	text, err := r.Text(d)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(text, "\n") {
		if n := len([]rune(line)); n > 78 {
			t.Errorf("a line of %d columns: %q", n, line)
		}
	}
	golden(t, "digest-web.txt.golden", []byte(text))
	page, err := r.HTML(d)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "digest-web.html.golden", []byte(page))
	for _, want := range []string{base + "/l/crew@lists.example.org/t/1", "/a/1/", "the whole message", listcopy.SignInMark} {
		if !strings.Contains(text, want) || !strings.Contains(page, want) {
			t.Errorf("the text or the HTML lacks %q", want)
		}
	}
}
