// Package lists owns crewmail's domain flows: lists, members and their policies, where a
// recipient address leads (post, command, bounce), what happens to a message sent there, and
// the message each outbox entry carries. The pure parts it builds on live apart: the list copy
// and header block in internal/listcopy, signed tokens in internal/token, mbox files in
// internal/mbox.
package lists

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"crewmail/internal/token"
	"crewmail/internal/vocab"
	"crewmail/store"
	"crewmail/templates"
)

// Config is what the domain needs from the server's configuration.
type Config struct {
	Hostname  string
	Separator string // between a list's local part and a command: crew+help@
	// Postmaster receives mail to postmaster@ of the lists' domains; empty: their owners.
	Postmaster string
	// ConfirmWithin is how long a post held for its author's confirmation waits; default 7 days.
	ConfirmWithin time.Duration
	// BounceThreshold and BouncePeriod: a member whose bounce score reaches the threshold,
	// built up over at least the period, is paused. Defaults 3 and 7 days.
	BounceThreshold float64
	BouncePeriod    time.Duration
	// IMAPServer tells members how to reach the IMAP archive, in the app password mail.
	IMAPServer string
	// BaseURL is where the HTTP listener is reached (https://lists.example.org), for one-click
	// unsubscribe links; empty: mailto links only.
	BaseURL string
	// ArchiveURL is the configured [http] base_url, where the web reader shows a conversation
	// (ArchiveURL/l/LIST/t/THREAD), for the links a search by mail answers with; empty: none.
	ArchiveURL string
	// SignIn mints the link that signs member addr in to the web reader for 7 days from now
	// (web.MemberSignInURL), which digests and the notices to members carry; nil: none (no
	// [http] base_url).
	SignIn func(addr string, now time.Time) string
	// DailyAt (15:04), WeeklyOn (a weekday, as members read it) and Zone (an IANA name; a
	// list's own time zone wins) say when digests go out, for the welcome.
	DailyAt, WeeklyOn, Zone string
	// PrivateRepliesPerHour is how many private replies (crew+p-TOKEN@) one member may send
	// in an hour; default 20.
	PrivateRepliesPerHour int
}

// Service is the domain layer over the store. Its methods are safe for concurrent use.
type Service struct {
	st     store.Backend
	tpl    *templates.Set
	cfg    Config
	log    *slog.Logger
	tokens *token.Signer
	// replies counts private replies per replier (privatereply.go).
	replies *replyRate
	// Now is the clock; tests replace it.
	Now func() time.Time
	// Enqueued is called after a commit that put mail in the outbox (it wakes delivery).
	Enqueued func()

	copies copies // the list copies of the posts being delivered (Compose)
}

// New returns a Service.
func New(st store.Backend, tpl *templates.Set, cfg Config, log *slog.Logger) *Service {
	if cfg.Separator == "" {
		cfg.Separator = "+"
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	cfg.ArchiveURL = strings.TrimRight(cfg.ArchiveURL, "/")
	if cfg.BounceThreshold == 0 {
		cfg.BounceThreshold = 3
	}
	if cfg.BouncePeriod == 0 {
		cfg.BouncePeriod = 7 * 24 * time.Hour
	}
	if cfg.ConfirmWithin == 0 {
		cfg.ConfirmWithin = 7 * 24 * time.Hour
	}
	if cfg.PrivateRepliesPerHour == 0 {
		cfg.PrivateRepliesPerHour = 20
	}
	return &Service{st: st, tpl: tpl, cfg: cfg, log: log, tokens: token.NewSigner(st.Secret()),
		replies: &replyRate{perHour: cfg.PrivateRepliesPerHour}, Now: time.Now, Enqueued: func() {}}
}

// ListOptions are the settings given when a list is created or changed, as the operator typed
// them (apply parses them); empty fields keep the current (or default) value.
type ListOptions struct {
	Name          string
	Owners        []string
	RemoveOwners  []string
	Join          string // a vocab.JoinPolicy
	Post          string // a vocab.PostPolicy
	SubjectPrefix *string
	ArchiveURL    *string
	AuthorIn      string // a vocab.AuthorIn
	Moderated     *bool
	NonMembers    string // a vocab.NonMembers
	Moderators    *[]string
	Timezone      *string
	Description   *string
	Welcome       *string // the owners' text for the welcome
	Ban, Unban    []string
	// ModerateFirstPosts: a new member's first post goes to the moderators.
	ModerateFirstPosts *bool
	OwnerNotices       string // "each" or "daily": how owners hear of joins and leaves
	Archive            string // "private" or "public": who reads the archive on the web
	// HideAddresses: list copies and digests show authors' names, not their addresses.
	HideAddresses *bool
	// Directory: who sees the crew's directory (owners, members, off); InviteBy: who may
	// invite (owners, members).
	Directory, InviteBy string
	// Keep: how long posts stay before retention redacts them (ParseKeep).
	Keep *string
}

func (o ListOptions) apply(l *store.List) error {
	if o.Name != "" {
		l.Name = o.Name
	}
	for _, owner := range o.Owners {
		a, err := ParseAddress(owner)
		if err != nil {
			return fmt.Errorf("owner: %w", err)
		}
		if !slices.Contains(l.Owners, a) {
			l.Owners = append(l.Owners, a)
		}
	}
	for _, owner := range o.RemoveOwners {
		a, err := ParseAddress(owner)
		if err != nil {
			return fmt.Errorf("owner: %w", err)
		}
		i := slices.Index(l.Owners, a)
		if i < 0 {
			return fmt.Errorf("%s is not an owner of %s", a, l.Address)
		}
		l.Owners = slices.Delete(l.Owners, i, i+1)
	}
	var err error
	if o.Join != "" {
		if l.Join, err = vocab.ParseJoinPolicy(o.Join); err != nil {
			return err
		}
	}
	if o.Post != "" {
		if l.Post, err = vocab.ParsePostPolicy(o.Post); err != nil {
			return err
		}
	}
	if o.AuthorIn != "" {
		if l.AuthorIn, err = vocab.ParseAuthorIn(o.AuthorIn); err != nil {
			return err
		}
	}
	if o.Moderated != nil {
		l.Moderated = *o.Moderated
	}
	if o.NonMembers != "" {
		if l.NonMembers, err = vocab.ParseNonMembers(o.NonMembers); err != nil {
			return err
		}
	}
	if o.Moderators != nil {
		l.Moderators = nil
		for _, m := range *o.Moderators {
			a, err := ParseAddress(m)
			if err != nil {
				return fmt.Errorf("moderator: %w", err)
			}
			if !slices.Contains(l.Moderators, a) {
				l.Moderators = append(l.Moderators, a)
			}
		}
	}
	if o.Timezone != nil {
		if _, err := time.LoadLocation(*o.Timezone); err != nil {
			return fmt.Errorf("%q is not a time zone name like \"Europe/Berlin\"", *o.Timezone)
		}
		l.Timezone = *o.Timezone
	}
	if o.SubjectPrefix != nil {
		l.SubjectPrefix = *o.SubjectPrefix
	}
	if o.Description != nil {
		l.Description = strings.Join(strings.Fields(*o.Description), " ")
	}
	if o.Welcome != nil {
		l.Welcome = strings.TrimSpace(strings.ReplaceAll(*o.Welcome, "\r\n", "\n"))
	}
	switch o.OwnerNotices {
	case "":
	case "each":
		l.OwnerNotices = ""
	case "daily":
		l.OwnerNotices = "daily"
	default:
		return fmt.Errorf("owner notices are each or daily, not %q", o.OwnerNotices)
	}
	if o.ModerateFirstPosts != nil {
		l.ModerateFirstPosts = *o.ModerateFirstPosts
	}
	switch o.Archive {
	case "":
	case "private":
		l.PublicArchive = false
	case "public":
		l.PublicArchive = true
	default:
		return fmt.Errorf("the archive is private (members read it on the web) or public (anyone does), not %q", o.Archive)
	}
	if o.HideAddresses != nil {
		l.HideAddresses = *o.HideAddresses
	}
	switch o.Directory {
	case "":
	case DirectoryOwners, DirectoryMembers, DirectoryOff:
		l.Directory = o.Directory
	default:
		return fmt.Errorf("directory: owners, members or off, not %q", o.Directory)
	}
	if o.Keep != nil {
		keep, err := ParseKeep(*o.Keep)
		if err != nil {
			return err
		}
		l.Keep = keep
	}
	switch o.InviteBy {
	case "":
	case DirectoryOwners, DirectoryMembers:
		l.InviteBy = o.InviteBy
	default:
		return fmt.Errorf("invite-by: owners or members, not %q", o.InviteBy)
	}
	for _, b := range o.Ban {
		entry, err := banEntry(b)
		if err != nil {
			return err
		}
		if !slices.Contains(l.Banned, entry) {
			l.Banned = append(l.Banned, entry)
		}
	}
	for _, b := range o.Unban {
		entry, err := banEntry(b)
		if err != nil {
			return err
		}
		i := slices.Index(l.Banned, entry)
		if i < 0 {
			return fmt.Errorf("%s is not banned from %s", entry, l.Address)
		}
		l.Banned = slices.Delete(l.Banned, i, i+1)
	}
	if o.ArchiveURL != nil {
		u := *o.ArchiveURL
		if u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "mailto:") {
			return fmt.Errorf("archive URL must start with https://, http:// or mailto:, not %q", u)
		}
		l.ArchiveURL = u
	}
	return nil
}

// banEntry is a ban as typed, an address or "@domain", normalized.
func banEntry(s string) (string, error) {
	s = strings.Trim(strings.TrimSpace(s), "<>")
	if domain, ok := strings.CutPrefix(s, "@"); ok {
		a, err := ParseAddress("x@" + domain)
		if err != nil {
			return "", fmt.Errorf("ban: %w", err)
		}
		return a[1:], nil
	}
	a, err := ParseAddress(s)
	if err != nil {
		return "", fmt.Errorf("ban: %w", err)
	}
	return a, nil
}

// banned reports whether addr may neither join nor post to l.
func banned(l store.List, addr string) bool {
	_, domain, _ := strings.Cut(addr, "@")
	return slices.Contains(l.Banned, addr) || slices.Contains(l.Banned, "@"+domain)
}

// CreateList makes a new list at address.
func (s *Service) CreateList(address string, o ListOptions) (store.List, error) {
	addr, err := ParseAddress(address)
	if err != nil {
		return store.List{}, err
	}
	local, _ := splitAddress(addr)
	if strings.Contains(local, s.cfg.Separator) {
		return store.List{}, fmt.Errorf("a list address cannot contain the separator %q: %s", s.cfg.Separator, addr)
	}
	if strings.HasSuffix(local, "-request") || local == "postmaster" || local == "abuse" {
		return store.List{}, fmt.Errorf("%s is reserved and cannot be a list", addr)
	}
	l := store.List{Address: addr, Name: local, Join: vocab.JoinApprove, Post: vocab.PostVerified, NonMembers: vocab.NonMembersReject, Created: s.Now().UTC()}
	if err := o.apply(&l); err != nil {
		return l, err
	}
	if o.Join != "" {
		if err := s.checkDeciders(l); err != nil {
			return l, err
		}
	}
	err = s.st.Update(func(tx store.Tx) error { return tx.CreateList(l) })
	if errors.Is(err, store.ErrExists) {
		return l, fmt.Errorf("the list %s already exists", addr)
	}
	return l, err
}

// checkDeciders refuses a list where owners approve who joins but nobody would: no owner, and
// no postmaster to stand in. It is checked when -join approve is asked for and when an owner
// is removed; a list made with the default policy and no owner yet gets its owner later, who
// then receives the requests that wait (sendWaitingRequests).
func (s *Service) checkDeciders(l store.List) error {
	if l.Join == vocab.JoinApprove && len(s.deciders(l)) == 0 {
		return fmt.Errorf("on %s the owners approve who joins (-join approve), but it has no owner: add one with -owner ADDRESS, or choose -join open or -join invite", l.Address)
	}
	return nil
}

// UpdateList changes a list's settings.
func (s *Service) UpdateList(address string, o ListOptions) (store.List, error) {
	addr, err := ParseAddress(address)
	if err != nil {
		return store.List{}, err
	}
	var l store.List
	_, err = s.update(func(tx store.Tx, res *Result) error {
		old, err := tx.List(addr)
		if err != nil {
			return err
		}
		l = old
		l.Owners = slices.Clone(old.Owners)
		if err := o.apply(&l); err != nil {
			return err
		}
		if o.Join != "" || len(o.RemoveOwners) > 0 {
			if err := s.checkDeciders(l); err != nil {
				return err
			}
		}
		if err := tx.PutList(l); err != nil {
			return err
		}
		// Owners added now get the join requests that wait: nobody else may have had them.
		var added []string
		for _, o := range l.Owners {
			if !slices.Contains(s.deciders(old), o) {
				added = append(added, o)
			}
		}
		if len(added) > 0 && l.Join == vocab.JoinApprove {
			return s.sendWaitingRequests(tx, l, added, res)
		}
		return nil
	})
	return l, notFound(err, "there is no list %s", addr)
}

// List returns one list's settings.
func (s *Service) List(address string) (store.List, error) {
	addr, err := ParseAddress(address)
	if err != nil {
		return store.List{}, err
	}
	var l store.List
	err = s.st.View(func(tx store.Tx) error {
		l, err = tx.List(addr)
		return err
	})
	return l, notFound(err, "there is no list %s", addr)
}

// Lists returns every list.
func (s *Service) Lists() ([]store.List, error) {
	var out []store.List
	err := s.st.View(func(tx store.Tx) error {
		var err error
		out, err = tx.Lists()
		return err
	})
	return out, err
}

// RemoveList deletes a list, its members and its archive.
func (s *Service) RemoveList(address string) error {
	addr, err := ParseAddress(address)
	if err != nil {
		return err
	}
	err = s.st.Update(func(tx store.Tx) error { return tx.DeleteList(addr) })
	return notFound(err, "there is no list %s", addr)
}

// AddMember subscribes address to list in mode (a vocab.Mode as the operator typed it; default
// each), with a welcome mail when welcome is set.
func (s *Service) AddMember(list, address, typed string, welcome bool) (store.Member, error) {
	laddr, err := ParseAddress(list)
	if err != nil {
		return store.Member{}, err
	}
	addr, err := ParseAddress(address)
	if err != nil {
		return store.Member{}, err
	}
	mode := vocab.Each
	if typed != "" {
		if mode, err = vocab.ParseMode(typed); err != nil {
			return store.Member{}, err
		}
	}
	m := store.Member{Address: addr, Mode: mode, Added: s.Now().UTC()}
	_, err = s.update(func(tx store.Tx, res *Result) error {
		var err error
		origin := store.Member{Address: addr, Mode: mode, Added: m.Added, Origin: store.OriginOperator, Consent: "added by the operator, " + moment(m.Added)}
		if m, err = tx.AddMember(laddr, origin); err != nil || !welcome {
			return err
		}
		l, err := tx.List(laddr)
		if err != nil {
			return err
		}
		return s.welcome(tx, l, addr, mode, "", res)
	})
	if errors.Is(err, store.ErrExists) {
		return m, fmt.Errorf("%s is already a member of %s", addr, laddr)
	}
	return m, notFound(err, "there is no list %s", laddr)
}

// RemoveMember unsubscribes address from list.
func (s *Service) RemoveMember(list, address string) error {
	laddr, addr, err := parseTwo(list, address)
	if err != nil {
		return err
	}
	err = s.st.Update(func(tx store.Tx) error {
		if _, err := tx.List(laddr); err != nil {
			return fmt.Errorf("there is no list %s", laddr)
		}
		l, _ := tx.List(laddr)
		return s.dropMember(tx, l, addr)
	})
	return notFound(err, "%s is not a member of %s", addr, laddr)
}

// SetMode changes how a member receives the list to mode, a vocab.Mode as the operator typed it.
func (s *Service) SetMode(list, address, typed string) (store.Member, error) {
	mode, err := vocab.ParseMode(typed)
	if err != nil {
		if _, _, perr := parseTwo(list, address); perr != nil {
			return store.Member{}, perr
		}
		return store.Member{}, err
	}
	return s.changeMember(list, address, func(m *store.Member) {
		m.Mode = mode
		resume(m)
	})
}

// SetOwnPosts sets whether a member gets her own posts back (own) or not.
func (s *Service) SetOwnPosts(list, address string, own bool) (store.Member, error) {
	return s.changeMember(list, address, func(m *store.Member) { m.NoOwnPosts = !own })
}

// SetShowRead sets whether a member's digests show in full the posts she has read already
// over IMAP (show), or one line for each (the default).
func (s *Service) SetShowRead(list, address string, show bool) (store.Member, error) {
	return s.changeMember(list, address, func(m *store.Member) { m.ShowRead = show })
}

// changeMember applies change to a member of list, as an operator's command does.
func (s *Service) changeMember(list, address string, change func(*store.Member)) (store.Member, error) {
	laddr, addr, err := parseTwo(list, address)
	if err != nil {
		return store.Member{}, err
	}
	var m store.Member
	err = s.st.Update(func(tx store.Tx) error {
		if _, err := tx.List(laddr); err != nil {
			return fmt.Errorf("there is no list %s", laddr)
		}
		var err error
		if m, err = tx.Member(laddr, addr); err != nil {
			return err
		}
		change(&m)
		return tx.PutMember(laddr, m)
	})
	return m, notFound(err, "%s is not a member of %s", addr, laddr)
}

// Members returns a list's members.
func (s *Service) Members(list string) ([]store.Member, error) {
	laddr, err := ParseAddress(list)
	if err != nil {
		return nil, err
	}
	var out []store.Member
	err = s.st.View(func(tx store.Tx) error {
		out, err = tx.Members(laddr)
		return err
	})
	return out, notFound(err, "there is no list %s", laddr)
}

// Archive returns what the archive of list holds, in sequence order.
func (s *Service) Archive(list string) ([]store.Post, error) {
	laddr, err := ParseAddress(list)
	if err != nil {
		return nil, err
	}
	var out []store.Post
	err = s.st.View(func(tx store.Tx) error {
		return tx.Posts(laddr, func(p store.Post) error {
			out = append(out, p)
			return nil
		})
	})
	return out, notFound(err, "there is no list %s", laddr)
}

// archivePage is how many post records EachPost reads in one read transaction: a slow
// reader of a long archive never holds one open for long (bbolt cannot grow its file while a
// read transaction is open).
const archivePage = 4096

// EachPost calls fn with the records of list's archive in sequence order, a page of them at a
// time (each read in a short transaction of its own, fn called between them): an archive of a
// million posts streams in constant memory. Posts archived meanwhile are included up to the
// newest when EachPost started.
func (s *Service) EachPost(list string, fn func([]store.Post) error) error {
	laddr, err := ParseAddress(list)
	if err != nil {
		return err
	}
	var last uint64
	err = s.st.View(func(tx store.Tx) error {
		last, err = tx.LastSeq(laddr)
		return err
	})
	if err != nil {
		return notFound(err, "there is no list %s", laddr)
	}
	page := make([]store.Post, 0, archivePage)
	for next := uint64(1); next <= last; {
		err := s.st.View(func(tx store.Tx) error {
			page = page[:0]
			for seq := next; seq <= last && len(page) < archivePage; seq++ {
				p, err := tx.PostMeta(laddr, seq)
				if err != nil {
					return err
				}
				page = append(page, p)
			}
			return nil
		})
		if err != nil {
			return notFound(err, "there is no list %s", laddr)
		}
		next += uint64(len(page))
		if err := fn(page); err != nil {
			return err
		}
	}
	return nil
}

func parseTwo(list, address string) (string, string, error) {
	laddr, err := ParseAddress(list)
	if err != nil {
		return "", "", err
	}
	addr, err := ParseAddress(address)
	return laddr, addr, err
}

// update runs fn in a write transaction with a fresh Result each time (the group commit may
// run fn again after another update failed) and wakes delivery when it put mail in the outbox.
func (s *Service) update(fn func(tx store.Tx, res *Result) error) (Result, error) {
	var res Result
	err := s.st.Update(func(tx store.Tx) error {
		res = Result{}
		return fn(tx, &res)
	})
	if err == nil && res.Queued > 0 {
		s.Enqueued()
	}
	return res, err
}

// notFound turns store.ErrNotFound into a sentence for the person at the keyboard.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf(format, args...)
	}
	return err
}
