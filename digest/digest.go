// Package digest owns crewmail's digests: which posts a digest member has not had yet, how they
// group into conversations, how a digest reads (text and HTML, from templates), and when each
// member's digest is due. Threads themselves are found at ingest (lists, store); a digest reads
// them.
package digest

import (
	"time"

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
	Messages int    // messages in this digest (this part)
	NewPost  string // mailto: URL that starts a new conversation
	Help     string // the list's help address
	Each     string // address that switches the member to every post as it comes
	Leave    string // the list's unsubscribe address
	Since    time.Time
	Until    time.Time
	Zone     string // the time zone the times are shown in
}

// Thread is one conversation in a digest, its messages oldest first.
type Thread struct {
	Anchor       string // "t" + thread number, for the table of contents
	Subject      string
	New          bool     // it started in this digest's period
	Participants []string // display names (or addresses), in order of first message
	Count        int      // messages of it in this digest
	Mute         string   // mailto: URL that mutes it for the reader
	Messages     []Message
}

// Message is one post in a digest.
type Message struct {
	Seq         uint64
	Author      string // display name (safetext.Author), or the address when there is none
	Address     string // the From address, which the templates show beside a display name
	Verified    bool   // proven: DMARC-aligned DKIM or SPF, or confirmed by its author
	Time        string // local time, e.g. "Wed 25 Nov 09:41"
	Text        string // the author's own text: quotes and signature trimmed
	Trimmed     bool   // quoted text or a signature was left out (the archive has it all)
	Attachments []Attachment
	Reply       string // mailto: URL of the Reply link, with subject (RFC 6068)
	// ReplyAuthor is the mailto: URL of the "Reply to Alice only" link: the post's private
	// reply address (crew+p-TOKEN@), which passes an answer on to its author alone.
	ReplyAuthor string
}

// Attachment names a file that came with a post.
type Attachment struct {
	Name string
	Size string // human-readable: "240 KB"
}
