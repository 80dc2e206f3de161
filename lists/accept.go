package lists

import (
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // non-UTF-8 headers decode instead of failing
	"github.com/emersion/go-message/mail"

	"crewmail/internal/dsn"
	"crewmail/internal/listcopy"
	"crewmail/internal/rawmsg"
	"crewmail/internal/token"
	"crewmail/internal/vocab"
	"crewmail/store"
)

// Envelope is one SMTP transaction as the domain sees it.
type Envelope struct {
	From     string   // MAIL FROM; "" is the null sender
	Targets  []Target // from Route, one per accepted RCPT
	Received string   // our trace header, CRLF-terminated, to put on top of what we keep
	Auth     Auth     // what verification found out about the author
}

// Auth is what verification (DKIM, SPF, DMARC) found out about a message's author.
type Auth struct {
	// Pass: a DMARC-aligned DKIM signature or SPF check passed for the From domain.
	Pass   bool
	Method vocab.Verified // VerifiedDKIM or VerifiedSPF when Pass
	Domain string         // the authenticated domain when Pass
	Reason string         // why not, when not Pass, in a few words
	// DKIMAligned: a valid DKIM signature of the From domain, which survives an unchanged list
	// copy. DMARCPolicy: the policy the From domain publishes ("none", "quarantine",
	// "reject", or "" without a record). Together they decide whether the list copy must be
	// sent From the list (see Compose).
	DKIMAligned bool
	DMARCPolicy string
	// DKIMRecipients are the addresses in the To and Cc fields that the From-aligned DKIM
	// signatures cover. A DKIM pass proves a post only to a list they name: every member
	// receives a signed post intact, and could replay it to another list its author is on.
	DKIMRecipients []string
	// SPFDomain is the domain whose SPF check passed aligned with From, "" when none did; it
	// proves a post whatever its To says.
	SPFDomain string
	// Header is the Authentication-Results field (RFC 8601) to put on top of what is kept,
	// CRLF-terminated; empty when nothing was verified.
	Header string
	// Evidence are the Authentication-Results fields of a trusted front MTA's checkers that
	// the message arrived with and keeps (unfolded, without the field name); recorded with
	// the archived post.
	Evidence []string
}

// Result says what Accept did.
type Result struct {
	Posts      []Archived // newly archived posts, one per list
	Duplicates []string   // lists that already had this Message-ID: acknowledged, not resent
	Queued     int        // outbox entries made
	Held       int        // posts held until their author confirms

	answering *answering      // the command mail being answered, while it is
	answered  map[string]bool // addresses this mail was answered to
	undo      string          // the token that undoes a leave made in this update (see leave)
}

// Archived is a post newly archived in List.
type Archived struct {
	List string
	store.Post
}

// inbound is a parsed inbound message.
type inbound struct {
	raw       []byte
	header    mail.Header
	from      string // the one From address, normalized
	messageID string
	subject   string
	date      time.Time // the Date field, zero when it does not parse
	refs      []string  // Message-IDs it replies to, nearest parent first
	auto      bool      // Auto-Submitted other than "no" (RFC 3834)
	// automatic: auto, or another sign of mail no person wrote (Precedence: auto_reply, bulk,
	// junk or list; X-Autoreply): commands never answer it.
	automatic bool
	// kept is the message as it is kept (our trace fields on top), for forwarding.
	kept []byte
	// excerpt is how the post begins, for the question to confirm it; read before the write
	// transaction, only for mail to a list's posting (or Reply) address.
	excerpt []string
	// postLines are the first lines of a post's own text (replytext.Body: quotes and signature
	// left out), for the excerpt and to tell a post from a stray command (administrivia);
	// postRead says they were read: a body that could not be read is not an empty one.
	postLines []string
	postRead  bool
	// search is what the search index keeps of the post, read with the body (searchRead).
	search     store.SearchDoc
	searchRead bool
	// searched are the answers to search commands, found before the write transaction: list
	// + 0x00 + the words → the answer's lines.
	searched map[string][]string
	// Read from the body by readBody before the write transaction, for the targets that need
	// them: the lines commands are taken from, and what a bounce reports.
	own       []string
	ownRead   bool // own was read: a body that could not be read is not an empty one
	report    dsn.Report
	reportErr error
	// threadIDs are the Message-IDs a mail to crew+mute@ or crew+follow@ names, nearest first
	// (see namedIDs).
	threadIDs []string
}

func parseMessage(raw []byte) (*inbound, error) {
	th, err := rawmsg.ReadHeader(raw)
	if err != nil {
		return nil, refuse(550, [3]int{5, 6, 0}, "the message header cannot be parsed: %v", err)
	}
	m := &inbound{raw: raw, header: mail.Header{Header: message.Header{Header: th}}}
	// RFC 5322 §3.6 allows one From field; a second one can ride along a valid DKIM signature
	// and show members a different author, so exactly one is accepted.
	switch n := len(th.Values("From")); n {
	case 0:
		return nil, refuse(550, [3]int{5, 7, 1}, "the message has no From header")
	case 1:
	default:
		return nil, refuse(550, [3]int{5, 7, 1}, "the message has %d From headers; exactly one is allowed", n)
	}
	from, err := m.header.AddressList("From")
	if err != nil {
		// Raw 8-bit text in a display name (RFC 6532 allows only UTF-8) does not make the
		// address unreadable: read it with the stray bytes replaced.
		from, err = mail.ParseAddressList(strings.ToValidUTF8(th.Get("From"), "\uFFFD"))
	}
	if err != nil || len(from) != 1 {
		return nil, refuse(550, [3]int{5, 7, 1}, "the From header must name exactly one readable address")
	}
	if m.from, err = ParseAddress(from[0].Address); err != nil {
		return nil, refuse(550, [3]int{5, 7, 1}, "the From address is not usable: %v", err)
	}
	if id, err := m.header.MessageID(); err == nil && id != "" && strings.Contains(id, "@") {
		m.messageID = id
	}
	m.subject, _ = m.header.Subject()
	// Parsed here, outside the transaction every concurrent post waits on.
	if d, err := m.header.Date(); err == nil {
		m.date = d
	}
	m.refs = m.references()
	if v := th.Get("Auto-Submitted"); v != "" {
		kind, _, _ := strings.Cut(v, ";")
		m.auto = !strings.EqualFold(strings.TrimSpace(kind), "no")
	}
	prec := strings.ToLower(strings.TrimSpace(th.Get("Precedence")))
	m.automatic = m.auto || prec == "auto_reply" || prec == "bulk" || prec == "junk" || prec == "list" ||
		th.Get("X-Autoreply") != "" || th.Get("X-Autorespond") != ""
	return m, nil
}

// references are the Message-IDs a message replies to, nearest parent first: In-Reply-To, then
// References from the end. Ids are read the way threaders read them (JWZ): any "<…@…>" token,
// so a stray "<yes>" or prose around the ids spoils nothing.
func (m *inbound) references() []string {
	var ids []string
	for _, v := range m.header.Values("In-Reply-To") {
		for _, id := range msgIDRE.FindAllStringSubmatch(v, -1) {
			ids = append(ids, id[1])
		}
	}
	var refs []string
	for _, v := range m.header.Values("References") {
		for _, id := range msgIDRE.FindAllStringSubmatch(v, -1) {
			refs = append(refs, id[1])
		}
	}
	slices.Reverse(refs)
	return append(ids, refs...)
}

// msgIDRE matches one "<id-left@id-right>" (RFC 5322 §3.6.4) in a field.
var msgIDRE = regexp.MustCompile(`<([^<>@\s]+@[^<>@\s]+)>`)

// Accept takes a message for its targets: posts are archived with their outbox entries in one
// durable transaction, commands are answered, bounces kept. It returns a *Refusal for mail that
// must be refused, any other error for a temporary failure. Either everything is accepted or
// nothing is.
func (s *Service) Accept(env Envelope, raw []byte) (Result, error) {
	var res Result
	m, err := parseMessage(raw)
	if err != nil {
		return res, err
	}
	// Checked on arrival only: an import of an old archive keeps what its list took then.
	if err := singleFields(m.header.Values); err != nil {
		return res, err
	}
	targets := slices.Clone(env.Targets)
	slices.SortFunc(targets, func(a, b Target) int {
		return strings.Compare(fmt.Sprint(a.List, a.Kind, a.Token), fmt.Sprint(b.List, b.Kind, b.Token))
	})
	targets = slices.Compact(targets)

	// What is kept: our Authentication-Results and Received on top (RFC 8601 §5, RFC 5321
	// §4.4), and a Message-ID when the message has no usable one, so the archive can index it.
	var msgid []byte
	if m.messageID == "" {
		m.messageID = s.newMessageID()
		msgid = []byte("Message-ID: <" + m.messageID + ">\r\n")
	}
	kept := slices.Concat([]byte(env.Auth.Header), []byte(env.Received), msgid, raw)
	m.kept = kept
	m.readBody(targets, kept)
	s.searchAhead(targets, m)

	err = s.st.Update(func(tx store.Tx) error {
		res = Result{}
		for _, t := range targets {
			l, err := tx.List(t.List)
			if err != nil {
				return refuse(450, [3]int{4, 2, 1}, "the list %s has just gone away", t.List)
			}
			switch t.Kind {
			case KindPost:
				err = s.acceptPost(tx, l, env, m, kept, &res)
			case KindBounce:
				err = s.acceptBounce(tx, l, t, m, kept, &res)
			case KindHelp, KindUnsubscribe, KindConfirm, KindSubscribe, KindMode, KindRequest, KindMute, KindUnmute, KindDigestReply, KindPassword, KindMuteThread, KindFollow, KindPause:
				err = s.acceptCommand(tx, l, t, env, m, &res)
			case KindPostmaster:
				err = s.forwardToPostmaster(tx, l, kept, &res)
			case KindOwner:
				err = s.forward(tx, l, l.Owners, kept, &res)
			case KindReply:
				err = s.acceptReply(tx, l, t, env, m, kept, &res)
			case KindPrivate:
				err = s.acceptPrivateReply(tx, l, t, env, m, &res)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	if res.Queued > 0 {
		s.Enqueued()
	}
	return res, nil
}

// acceptPost checks a post against the list's policy (decidePost), archives it and puts one
// outbox entry per member who receives each post, or holds it as the policy says.
func (s *Service) acceptPost(tx store.Tx, l store.List, env Envelope, m *inbound, kept []byte, res *Result) error {
	env.Auth = env.Auth.forPost(l.Address, s.cfg.Separator)
	id := listcopy.ID(l.Address)
	for _, v := range m.header.Values("List-Id") {
		if strings.Contains(strings.ToLower(v), "<"+id+">") {
			return refuse(550, [3]int{5, 4, 6}, "mail loop: this message has already been through %s", l.Address)
		}
	}
	for _, v := range m.header.Values("X-Loop") {
		if strings.EqualFold(strings.TrimSpace(v), l.Address) {
			return refuse(550, [3]int{5, 4, 6}, "mail loop: this message has already been through %s", l.Address)
		}
	}
	// RFC 3834 §2: automatic responses (vacation notices and the like) are not posts.
	if m.auto {
		return refuse(550, [3]int{5, 7, 1}, "automatically submitted mail (Auto-Submitted) is not posted to %s", l.Address)
	}
	if env.From == "" {
		return refuse(550, [3]int{5, 7, 1}, "mail from the null sender is not posted to %s", l.Address)
	}
	if banned(l, m.from) {
		return refuse(550, [3]int{5, 7, 1}, "%s may not post to %s", m.from, l.Address)
	}
	// A reply to a digest (Reply All copies crew@, and a client ignoring Reply-To writes
	// to it) is never posted: it is answered as mail to crew+digest@ is, once.
	if s.repliesToDigest(l.Address, m) {
		return s.acceptCommand(tx, l, Target{List: l.Address, Kind: KindDigestReply}, env, m, res)
	}
	member := true
	mem, err := tx.Member(l.Address, m.from)
	if errors.Is(err, store.ErrNotFound) {
		member = false
	} else if err != nil {
		return err
	}
	decision := decidePost(l, member, env.Auth.Pass)
	// A new member's first post waits for the moderators, where the list wants that.
	firstPost := member && l.ModerateFirstPosts && !mem.Posted
	if decision == postAccept && firstPost {
		decision = postHoldFirst
	}
	if decision == postRefuse {
		return refuse(550, [3]int{5, 7, 1}, "%s is not a member of %s, and only members may post to it", m.from, l.Address)
	}
	if _, dup, err := tx.MessageID(l.Address, m.messageID); err != nil {
		return err
	} else if dup {
		res.Duplicates = append(res.Duplicates, l.Address)
		return nil
	}
	held := store.Held{From: m.from, Received: s.Now().UTC(), Raw: kept, DMARCPolicy: env.Auth.DMARCPolicy, Evidence: env.Auth.Evidence, Excerpt: m.excerpt}
	if env.Auth.Pass {
		held.Verified, held.AuthDomain, held.DKIMAligned = env.Auth.Method, env.Auth.Domain, env.Auth.DKIMAligned
	}
	if why, ok := administrivia(m.subject, l.Name, m.postLines); ok && m.postRead {
		return s.holdAdministrivia(tx, l, env, m, held, why, res)
	}
	switch decision {
	case postHoldNonMember:
		held.Reason = m.from + " is not a member"
		if !env.Auth.Pass {
			held.Reason += ", and the post could not be verified"
		}
		return s.holdForModeration(tx, l, held, res)
	case postConfirm:
		return s.holdForConfirmation(tx, l, env.Auth, m, kept, res)
	case postHoldModerated:
		held.Reason = "the list is moderated"
		return s.holdForModeration(tx, l, held, res)
	case postHoldFirst:
		held.Reason = "it is " + m.from + "'s first post, and first posts wait for a moderator"
		return s.holdForModeration(tx, l, held, res)
	}
	verified := vocab.Unverified
	if env.Auth.Pass {
		verified = env.Auth.Method
	}
	p := store.Post{Verified: verified, AuthDomain: env.Auth.Domain, DKIMAligned: env.Auth.DKIMAligned, DMARCPolicy: env.Auth.DMARCPolicy, Evidence: env.Auth.Evidence}
	return s.distribute(tx, l, m, kept, p, res)
}

// distribute archives a post (p carries what verification found) and puts one outbox entry per
// member who receives each post.
func (s *Service) distribute(tx store.Tx, l store.List, m *inbound, kept []byte, p store.Post, res *Result) error {
	p.Received, p.MessageID, p.From, p.Subject = s.Now().UTC(), m.messageID, m.from, m.subject
	p.Date = m.date
	th, err := s.threadOf(tx, l.Address, m)
	if err != nil {
		return err
	}
	p.Thread = th
	if p, err = tx.AppendPost(l.Address, p, kept); err != nil {
		return err
	}
	// The index is kept in the transaction that archives the post. A released held post is
	// read here, as parseMessage read it in the transaction that releases it.
	if !m.searchRead {
		m.search, m.searchRead = store.NewSearchDoc(kept), true
	}
	if err := tx.IndexPost(l.Address, p.Seq, m.search.For(p)); err != nil {
		return err
	}
	if mem, err := tx.Member(l.Address, m.from); err == nil && !mem.Posted {
		mem.Posted = true
		if err := tx.PutMember(l.Address, mem); err != nil {
			return err
		}
	}
	if err := s.indexThread(tx, l.Address, p, m); err != nil {
		return err
	}
	res.Posts = append(res.Posts, Archived{List: l.Address, Post: p})
	rcpts, err := tx.Recipients(l.Address)
	if err != nil {
		return err
	}
	muted, err := tx.Muted(l.Address, p)
	if err != nil {
		return err
	}
	followed, err := tx.Followed(l.Address, p)
	if err != nil {
		return err
	}
	// An author who asked not to get her own posts back does not.
	var self uint64
	if a, err := tx.Member(l.Address, m.from); err == nil && a.NoOwnPosts {
		self = a.ID
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	delete(followed, self)
	for _, mem := range rcpts {
		delete(followed, mem.ID) // she has each post anyway
		if muted[mem.ID] || mem.ID == self {
			continue
		}
		d := store.Delivery{List: l.Address, Seq: p.Seq, From: s.bounceAddress(l.Address, mem.ID), To: mem.Address, Member: mem.ID, Created: p.Received}
		if _, err := tx.Enqueue(d); err != nil {
			return err
		}
		res.Queued++
	}
	// Members who follow the thread in another mode get the post at once too (and their
	// digests leave it out); not one whose delivery is paused for bouncing, nor one who left.
	for _, id := range slices.Sorted(maps.Keys(followed)) {
		mem, err := tx.MemberByID(l.Address, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if !mem.Paused.IsZero() || !mem.AwayUntil.IsZero() {
			continue
		}
		d := store.Delivery{List: l.Address, Seq: p.Seq, From: s.bounceAddress(l.Address, mem.ID), To: mem.Address, Member: mem.ID, Created: p.Received}
		if _, err := tx.Enqueue(d); err != nil {
			return err
		}
		res.Queued++
	}
	return nil
}

// forwardToPostmaster passes mail for postmaster@ on to the postmasters.
func (s *Service) forwardToPostmaster(tx store.Tx, l store.List, kept []byte, res *Result) error {
	all, err := tx.Lists()
	if err != nil {
		return err
	}
	_, domain := splitAddress(l.Address)
	return s.forward(tx, l, s.postmasters(all, domain), kept, res)
}

// forward passes mail on to people (postmasters, owners), unchanged, with the null return path
// so that a failure cannot start a loop.
func (s *Service) forward(tx store.Tx, l store.List, to []string, kept []byte, res *Result) error {
	if len(to) == 0 {
		return refuse(550, [3]int{5, 1, 1}, "%s has nobody to read this mail: the list has no owners", l.Address)
	}
	for _, to := range to {
		if _, err := tx.Enqueue(store.Delivery{List: l.Address, Message: kept, To: to, Created: s.Now().UTC()}); err != nil {
			return err
		}
		res.Queued++
	}
	return nil
}

// bounceAddress is the VERP return path for mail from list to one member.
func (s *Service) bounceAddress(list string, memberID uint64) string {
	return s.address(list, "bounces-"+s.verpToken(list, memberID))
}

func (s *Service) newMessageID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return token.Encode(b) + "@" + s.cfg.Hostname
}
