package templates

import "crewmail/internal/vocab"

// Notice is what a notice's template reads (every text template but the digest's, whose data
// is digest.Digest): the list's addresses and settings, which every notice has, and what the
// notice is about, which each notice fills in as far as it needs; the rest stays empty.
// Templates read it by field name, so a template naming a field Notice lacks fails Check.
type Notice struct {
	// The list.
	ListName    string   // its display name
	Description string   // what it is for, in a sentence; may be empty
	Welcome     []string // the owners' own text for the welcome, a paragraph an element
	List        string   // its address
	Post        string   // where posts go: the list's address
	Help        string   // the command addresses: crew+help@, …
	Unsubscribe string
	Subscribe   string
	Owner       string
	Request     string // crew-request@, commands in the body
	Each        string // the addresses that set how a member receives the list
	Daily       string
	Weekly      string
	Nomail      string
	NewPassword string // the address that mails a member a new IMAP app password
	Policy      vocab.PostPolicy
	Join        vocab.JoinPolicy
	Moderated   bool
	ArchiveURL  string
	Hostname    string // the server's
	Guide       string // the member guide's URL; empty when the server has no web address
	// When digests go out: the time of day (15:04), the weekday of the weekly one, and the
	// time zone (an IANA name) both are in.
	DailyAt  string
	WeeklyOn string
	Zone     string

	// What the notice is about.
	Address  string     // whom it is about: a member, someone joining, invited, removed
	Mode     vocab.Mode // the mode asked for or set
	Confirm  string     // the address that confirms (replying to the notice works too)
	Approve  string     // the addresses that approve or reject (a post, a join, a mute)
	Reject   string
	Expires  string // the day the confirmation or decision runs out
	Subject  string // a post's subject
	From     string // a post's author, as its From says
	Received string // when a post (or the first bounce) came
	Reason   string // why: a post was held or refused, a member was paused or removed
	By       string // the owner who invited
	Note     string // the owner's own words to the invitee
	How      string // how someone joined or left, for the owners
	SignIn   string // a link that signs a member in to the web reader
	Password string // a new IMAP app password, and the server to use it with
	IMAP     string
	Lines    []string     // an owner's command lines that wait for confirmation
	Results  []string     // what each line of a mail to crew-request@ did
	Used     string       // the address the mail answered went to; empty: a reply
	Excerpt  []string     // how a held post begins
	Threads  []ThreadLink // conversations a reply to a digest could have answered
	Attached bool         // the mail answered is attached
	// Waiting posts wait for the moderators besides this one; Unnoticed of them were not
	// sent to them yet.
	Waiting   int
	Unnoticed int
}

// ThreadLink is a conversation with the address that answers its latest post.
type ThreadLink struct {
	Subject string
	Reply   string
}
