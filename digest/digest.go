// Package digest owns crewmail's digests: which posts a digest member has not had yet, how they
// group into conversations, how a digest reads (text and HTML, from templates), and when each
// member's digest is due. Threads themselves are found at ingest (lists, store); a digest reads
// them.
package digest

import (
	"html/template"
	"slices"
	"time"

	"crewmail/internal/listcopy"
	"crewmail/internal/vocab"
)

// Digest is one digest as the templates see it.
type Digest struct {
	List     string // crew@example.org
	ListName string
	Period   vocab.Mode // vocab.Daily or vocab.Weekly
	Title    string     // e.g. "Daily digest: 3 conversations, 11 messages"
	Subject  string     // the mail's subject: "[ListName] " + Title
	Part     int        // 1-based part number when a digest is split, 0 when it is not
	Parts    int
	Threads  []Thread
	// Contents are the conversations of the whole digest, each with the part it is in: the
	// table of contents of every part lists them all.
	Contents []Entry
	Messages int    // messages in this digest (this part)
	NewPost  string // mailto: URL that starts a new conversation
	Help     string // the list's help address
	Each     string // address that switches the member to every post as it comes
	Leave    string // the list's unsubscribe address
	Since    time.Time
	Until    time.Time
	Zone     string // the time zone the times are shown in
	// Archive is the link to the web reader in the footer ("Read and search the archive"),
	// which signs the member in (Web.SignIn); "" without [http] base_url.
	Archive string
}

// Web makes the web reader's addresses a digest links to (web.ConversationURL, MessageURL,
// AttachmentURL, MemberSignInURL, under the [http] base_url). The command wires them in:
// digest does not know the reader. A nil function leaves its links out, as without a base_url.
type Web struct {
	Conversation func(list string, thread uint64) string
	Message      func(list string, seq uint64) string
	Attachment   func(list string, seq uint64, n int, name string) string
	// SignIn: the footer links to the reader with each member's own sign-in link. A digest is
	// shared by the members it is the same for (one stored copy), so it carries
	// listcopy.SignInMark, which lists.Compose replaces for each member at delivery.
	SignIn bool
	// List is the list's page in the reader, which a preview's footer shows instead (a
	// preview is nobody's).
	List func(list string) string
}

// link gives d's conversations, trimmed messages and attachments their web addresses.
func (w Web) link(d *Digest) {
	if w.SignIn {
		d.Archive = listcopy.SignInMark
	}
	for i := range d.Threads {
		t := &d.Threads[i]
		if w.Conversation != nil {
			t.URL = w.Conversation(d.List, t.Number)
		}
		for j := range t.Messages {
			m := &t.Messages[j]
			if w.Message != nil && m.Trimmed {
				m.FullURL = w.Message(d.List, m.Seq)
			}
			if w.Attachment != nil {
				// Numbered as the reader's message page lists them (replytext's order).
				as := slices.Clone(m.Attachments)
				for k := range as {
					as[k].URL = w.Attachment(d.List, m.Seq, k+1, as[k].Name)
				}
				m.Attachments = as
			}
		}
	}
}

// Entry is a conversation in a digest's table of contents.
type Entry struct {
	Anchor       string
	Subject      string
	New          bool
	Participants []string
	Count        int
	Part         int  // the part it is in, when the digest is split; 0 when it is not
	Here         bool // it is in this part (always, when the digest is not split)
}

// Thread is one conversation in a digest, its messages oldest first.
type Thread struct {
	Anchor       string // "t" + thread number, for the table of contents
	Number       uint64 // the thread number (store.Post.Thread)
	URL          string // the conversation in the web reader; "" without one
	Subject      string
	New          bool     // it started in this digest's period
	Participants []string // display names (or addresses), in order of first message
	Count        int      // messages of it in this digest
	Mute         string   // mailto: URL that mutes it for the reader
	Messages     []Message
	// Omitted: messages of it left out of this digest because the conversation alone is
	// larger than a part may be (Renderer.MaxHTMLBytes); the archive has them.
	Omitted int
}

// Message is one post in a digest.
type Message struct {
	Seq      uint64
	Author   string // display name (safetext.Author), or the address when there is none
	Address  string // the From address, which the templates show beside a display name
	Verified bool   // proven: DMARC-aligned DKIM or SPF, or confirmed by its author
	Time     string // local time, e.g. "Wed 25 Nov 09:41"
	// Newcomer says who brought the author in, beside the posts of her first weeks ("new
	// member, invited by ann@…"); empty otherwise.
	Newcomer string
	// Text is the author's own text for the text part (quotes and signature left out,
	// htmlpost.Post.Text): a paragraph that was only hard-wrapped is one line, which the
	// format=flowed text part wraps again; links are followed by references such as [1].
	Text string
	Refs []string // the URLs of Text's references, [1] first
	// HTML is the same text for the HTML part: paragraphs, links, tables, as htmlpost's policy
	// lets them through, styled by the digest.
	HTML template.HTML
	// Trimmed: quoted text, the original of a reply or the end of a long text was left out;
	// the templates show a quiet "…". A signature or a "Sent from my phone" line alone is
	// left out without a word.
	Trimmed bool
	// FullURL is where the whole message can be read (the web reader's permalink), for the
	// "…" to link to; "" without the reader.
	FullURL string
	// Read: the reader has read it already (IMAP \Seen); the templates show one line for it.
	Read        bool
	Attachments []Attachment
	Reply       string // mailto: URL of the Reply link, with subject (RFC 6068), for the HTML part
	ReplyTo     string // the bare address the Reply link writes to (crew+r-TOKEN@), for the text part
	// ReplyAuthor is the mailto: URL of the "Reply to Alice only" link (HTML part): the post's
	// private reply address (crew+p-TOKEN@), which passes an answer on to its author alone;
	// ReplyAuthorTo is that bare address, for the text part.
	ReplyAuthor   string
	ReplyAuthorTo string
}

// Attachment names a file that came with a post.
type Attachment struct {
	Name string
	Size string // human-readable: "240 KB"
	URL  string // its download from the web reader; "" without one
}
