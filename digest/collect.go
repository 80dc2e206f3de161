package digest

import (
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	"crewmail/internal/htmlpost"
	"crewmail/internal/rawmsg"
	"crewmail/internal/replytext"
	"crewmail/internal/safetext"
	"crewmail/internal/subject"
	"crewmail/internal/vocab"
	"crewmail/store"
)

// Links are the addresses a digest points to; the lists package makes them (they are signed
// with the server's secret).
type Links interface {
	ReplyAddress(list string, seq uint64) string     // crew+r-TOKEN@: answers one post
	MuteAddress(list string, thread uint64) string   // crew+mute-TOKEN@: mutes a thread
	Address(list, cmd string) string                 // crew+CMD@
	BounceAddress(list string, member uint64) string // the VERP return path to one member
	// DigestMessageID draws a Message-ID (without <>) the list knows again as a digest's, so
	// that a reply naming it in In-Reply-To or References is never posted.
	DigestMessageID(list string) string
	// PrivateReplyAddress is crew+p-TOKEN@, which answers the author of one post alone.
	PrivateReplyAddress(list string, seq uint64) string
}

// maxTextChars bounds the text of one message in a digest; the archive keeps all of it.
const maxTextChars = 8000

// post is an archived post read for digests: what every member's digest shows of it.
type post struct {
	store.Post
	author  string
	message Message
}

// readPosts reads the posts of list after seq, with their text, once for all the members
// whose digests include them.
func readPosts(tx archiveMembers, l store.List, after uint64, links Links, zone *time.Location) ([]post, error) {
	var out []post
	members, err := tx.Members(l.Address)
	if err != nil {
		return nil, err
	}
	byAddr := make(map[string]store.Member, len(members))
	for _, m := range members {
		byAddr[m.Address] = m
	}
	err = tx.PostsAfter(l.Address, after, func(p store.Post, raw []byte) error {
		out = append(out, readPost(l.Address, p, raw, links, zone))
		if m, ok := byAddr[p.From]; ok {
			out[len(out)-1].message.Newcomer = m.Newcomer(p.Received, l.HideAddresses)
		}
		if l.HideAddresses {
			out[len(out)-1].hideAddress()
		}
		return nil
	})
	return out, err
}

// archiveMembers is what readPosts reads: the posts, and the members who wrote them.
type archiveMembers interface {
	store.Archive
	store.Members
}

func readPost(list string, p store.Post, raw []byte, links Links, zone *time.Location) post {
	// Raw 8-bit header text can be anything; a digest is UTF-8, and its table of contents one
	// line per conversation: an encoded line break or a bidi override stays out.
	p.Subject = safetext.Line(p.Subject)
	author := p.From
	if h, err := rawmsg.ReadHeader(raw); err == nil {
		mh := mail.Header{}
		mh.Set("From", h.Get("From"))
		// Anyone chooses their display name: one that looks like an address is not shown,
		// and the templates show the address beside any other.
		if as, err := mh.AddressList("From"); err == nil && len(as) == 1 && safetext.Author(as[0].Name) != "" {
			author = safetext.Author(as[0].Name)
		}
	}
	when := p.Date
	if when.IsZero() || when.After(p.Received) {
		when = p.Received
	}
	m := Message{
		Seq: p.Seq, Author: author, Address: p.From,
		Verified: p.Verified.ByAuthor(),
		Time:     when.In(zone).Format("Mon 2 Jan 15:04"),
		ReplyTo:  links.ReplyAddress(list, p.Seq),
	}
	m.Reply = mailto(m.ReplyTo, replySubject(p.Subject))
	m.ReplyAuthorTo = links.PrivateReplyAddress(list, p.Seq)
	m.ReplyAuthor = mailto(m.ReplyAuthorTo, replySubject(p.Subject))
	if t, err := replytext.Body(raw, maxTextChars); err == nil {
		var r htmlpost.Post
		if t.Marked != "" {
			r = htmlpost.FromMarked(t.Marked)
		} else {
			r = htmlpost.FromText(t.Text, t.Flowed)
		}
		m.Text, m.Refs, m.Trimmed = r.Text, r.Refs, t.Quoted
		m.HTML = template.HTML(htmlpost.Style(r.HTML, postStyles)) // it passed htmlpost's policy
		for _, f := range t.Attachments {
			m.Attachments = append(m.Attachments, Attachment{Name: f.Name, Size: size(f.Size)})
		}
	} else {
		r := htmlpost.FromText("(this message could not be read; it is in the archive as it came)", false)
		m.Text, m.HTML, m.Trimmed = r.Text, template.HTML(htmlpost.Style(r.HTML, postStyles)), true
	}
	return post{Post: p, author: author, message: m}
}

// postStyles are the digest's look of a post's text in the HTML part (htmlpost.Style): mail
// programs drop style sheets, so each element carries its own. Nothing of the post's own
// style gets this far.
var postStyles = map[string]string{
	"p":     "margin:0 0 12px;",
	"a":     "color:#1a5a8a; overflow-wrap:anywhere;",
	"small": "font-size:13px; color:#595959; overflow-wrap:anywhere;",
	"pre":   "margin:0 0 12px; white-space:pre-wrap; overflow-wrap:anywhere; font-family:Menlo, Consolas, monospace; font-size:14px; line-height:1.4;",
	"table": "border-collapse:collapse; margin:0 0 12px; font-size:14px; max-width:100%;",
	"td":    "border:1px solid #d9d9d2; padding:4px 8px; vertical-align:top; overflow-wrap:anywhere;",
	"th":    "border:1px solid #d9d9d2; padding:4px 8px; vertical-align:top; text-align:left; background-color:#f3f3ef;",
}

// build groups posts into a digest: threads ordered by latest activity, newest first; each
// thread's messages in the order they came. New threads are the ones that started after the
// member's previous digest.
//
// The posts in read (IMAP \Seen, for a member who did not ask to see them again) are shown as
// one line each.
func build(l store.List, period vocab.Mode, posts []post, after uint64, links Links, zone *time.Location, until time.Time, read map[uint64]bool) Digest {
	byThread := map[uint64]*Thread{}
	latest := map[uint64]uint64{}
	var order []uint64
	subjects := map[uint64][]string{}
	for _, p := range posts {
		t, ok := byThread[p.Thread]
		if !ok {
			t = &Thread{Anchor: fmt.Sprintf("t%d", p.Thread), Number: p.Thread, New: p.Thread > after,
				Mute: mailto(links.MuteAddress(l.Address, p.Thread), "")}
			byThread[p.Thread] = t
			order = append(order, p.Thread)
		}
		subjects[p.Thread] = append(subjects[p.Thread], p.Subject)
		if !slices.Contains(t.Participants, p.author) {
			t.Participants = append(t.Participants, p.author)
		}
		m := p.message
		m.Read = read[p.Seq]
		t.Messages = append(t.Messages, m)
		t.Count++
		latest[p.Thread] = p.Seq
	}
	slices.SortStableFunc(order, func(a, b uint64) int { return int(latest[b]) - int(latest[a]) })
	d := Digest{
		List: l.Address, ListName: l.Name, Period: period, Messages: len(posts),
		NewPost: mailto(l.Address, ""), Help: links.Address(l.Address, "help"),
		Each: links.Address(l.Address, string(vocab.Each)), Leave: links.Address(l.Address, "unsubscribe"),
		Until: until.In(zone), Zone: zone.String(),
	}
	if len(posts) > 0 {
		d.Since = posts[0].Received.In(zone)
	}
	for _, th := range order {
		t := byThread[th]
		// The conversation's own subject, not the first one the digest holds ("Re: Tomatoes",
		// a reply to a digest).
		if t.Subject = subject.Title(subjects[th]); t.Subject == "" {
			t.Subject = "(no subject)"
		}
		d.Threads = append(d.Threads, *t)
	}
	name := "Daily"
	if period == vocab.Weekly {
		name = "Weekly"
	}
	d.Title = fmt.Sprintf("%s digest: %s, %s", name, count(len(d.Threads), "conversation"), count(d.Messages, "message"))
	d.Subject = "[" + l.Name + "] " + d.Title
	return d
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// mailto is a mailto: URL (RFC 6068) with an optional subject, percent-encoded.
func mailto(addr, subject string) string {
	u := "mailto:" + addr
	if subject != "" {
		u += "?subject=" + strings.ReplaceAll(url.QueryEscape(subject), "+", "%20")
	}
	return u
}

// replySubject is the subject of an answer: "Re: " in front, once.
func replySubject(s string) string {
	if t := strings.TrimSpace(s); len(t) >= 3 && strings.EqualFold(t[:3], "re:") {
		return t
	}
	return "Re: " + strings.TrimSpace(s)
}

func size(n int) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d bytes", n)
	case n < 1000*1000:
		return fmt.Sprintf("%d KB", (n+500)/1000)
	default:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
}
