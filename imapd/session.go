package imapd

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"crewmail/internal/mailaddr"
	"crewmail/internal/metrics"
	"crewmail/store"
)

// delim is the hierarchy delimiter LIST reports. There is no hierarchy, and mailbox names
// (see mailboxNames) contain neither it nor a dot, which some clients (mutt) take for one
// whatever LIST says.
const delim = '/'

// mailboxNames are the names of the mailboxes of lists, in their order, for one member: the
// local part of each list's address ("crew"), with any "." or "/" made "-"; where two of the
// member's lists share that, or it would be INBOX, the domain follows with its dots made "-"
// ("crew-lists-example-org"). The list's address also opens its mailbox (see lookup), the name
// clients were given before.
func mailboxNames(lists []store.List) []string {
	clean := strings.NewReplacer(".", "-", "/", "-").Replace
	base := make([]string, len(lists))
	count := map[string]int{}
	for i, l := range lists {
		local, _, _ := mailaddr.Split(l.Address)
		base[i] = clean(local)
		count[strings.ToLower(base[i])]++
	}
	names := make([]string, len(lists))
	for i, l := range lists {
		names[i] = base[i]
		if count[strings.ToLower(base[i])] > 1 || strings.EqualFold(base[i], "INBOX") {
			_, domain, _ := mailaddr.Split(l.Address)
			names[i] = base[i] + "-" + clean(domain)
		}
	}
	return names
}

// mailboxFlags are the flags a member can keep on a post (RFC 9051 §7.1: FLAGS and
// PERMANENTFLAGS).
var mailboxFlags = []imap.Flag{imap.FlagSeen, imap.FlagFlagged}

// session is one IMAP connection. The library calls its methods one command at a time, except
// that IDLE runs in a goroutine of its own that may outlive the command when the connection
// drops; mu keeps IDLE and Close apart.
type session struct {
	srv    *Server
	remote string // throttling key of the remote address
	log    *slog.Logger

	mu   sync.Mutex
	addr string    // the member's address, once logged in
	sel  *selected // the selected mailbox, or nil
}

// selected is the client's view of the selected mailbox: sequence number i is uids[i-1]. Posts
// are never removed from an archive, so the view only grows (EXISTS), never shrinks (EXPUNGE).
type selected struct {
	list     string
	created  time.Time // a list deleted and created again is another mailbox
	readOnly bool      // EXAMINE: no flag changes, BODY[] does not set \Seen
	// uidValidity is the mailbox's UIDVALIDITY when it was selected: a redaction changes it
	// (see uidValidity), and then this view's UIDs no longer name what they named.
	uidValidity uint32
	uids        []imap.UID
	// The member's flags as this session knows them, of generation flagGen (Server.flagGen):
	// when another session changes them, the next poll tells the client what changed.
	member  uint64
	flags   map[uint64]byte
	flagGen uint64
}

// setOwn records flags this session changed and told its client of; before is the generation
// read before the change was made.
func (s *session) setOwn(sel *selected, before uint64, set map[uint64]byte) {
	if len(set) == 0 {
		return
	}
	for uid, f := range set {
		sel.flags[uid] = f
	}
	g := s.srv.flagsChanged(flagsKey{sel.list, sel.member})
	if g == before+1 && sel.flagGen == before {
		sel.flagGen = g // no other session changed them meanwhile: nothing to tell
	}
}

func (sel *selected) lastUID() imap.UID {
	if len(sel.uids) == 0 {
		return 0
	}
	return sel.uids[len(sel.uids)-1]
}

func no(code imap.ResponseCode, format string, args ...any) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: fmt.Sprintf(format, args...)}
}

// readOnly refuses what would change an archive (RFC 5530 CANNOT: the operation violates an
// invariant of the server).
func readOnly(what string) error {
	return no(imap.ResponseCodeCannot, "%s is not possible: list archives are read-only; only \\Seen and \\Flagged can be set", what)
}

// uidValidity is the list's creation time, plus one for every post redacted since: a redacted
// post keeps its UID number with other bytes, which RFC 9051 §2.3.1.1 allows only under a new
// UIDVALIDITY (a client then drops what it cached of the mailbox and fetches it again).
// errRedacted ends a session whose selected mailbox had a post redacted.
var errRedacted = errors.New("a message of the selected mailbox was redacted: select it again")

// stale reports whether a post of the selected mailbox was redacted since it was selected.
func (sel *selected) stale(tx store.Lists) (bool, error) {
	l, err := tx.List(sel.list)
	if err != nil {
		return false, nil // gone; the next command on it says so
	}
	return uidValidity(l) != sel.uidValidity, nil
}

func uidValidity(l store.List) uint32 {
	if v := uint32(l.Created.Unix()) + l.Redactions; v != 0 {
		return v
	}
	return 1 // RFC 9051 §2.3.1.1: UIDVALIDITY is a non-zero number
}

// flagMap is member's flags on list's posts, by sequence.
func flagMap(tx store.IMAPAccess, list string, member uint64) (map[uint64]byte, error) {
	m := make(map[uint64]byte)
	err := tx.FlagsOf(list, member, func(seq uint64, flags byte) error {
		m[seq] = flags
		return nil
	})
	return m, err
}

func flagList(f byte) []imap.Flag {
	l := []imap.Flag{}
	if f&store.FlagSeen != 0 {
		l = append(l, imap.FlagSeen)
	}
	if f&store.FlagFlagged != 0 {
		l = append(l, imap.FlagFlagged)
	}
	return l
}

// flagBit is the store's bit for flag, 0 for every flag a member cannot keep.
func flagBit(flag imap.Flag) byte {
	switch strings.ToLower(string(flag)) {
	case `\seen`:
		return store.FlagSeen
	case `\flagged`:
		return store.FlagFlagged
	}
	return 0
}

// membership is what a session reads to know which mailboxes the logged-in address may open:
// the lists and their members.
type membership interface {
	store.Lists
	store.Members
	ListsOf(addr string) ([]store.List, []store.Member, error)
}

// mailbox is what a session reads of an open mailbox: the list's archive and the member's
// flags on it.
type mailbox interface {
	store.Archive
	store.IMAPAccess
}

// lookup finds mailbox name among the lists the logged-in address is a member of now.
// Someone who is not a member learns nothing about whether the list exists.
// The list's address is the old name of its mailbox, and still opens it.
func (s *session) lookup(tx membership, name string) (store.List, store.Member, error) {
	lists, members, err := tx.ListsOf(s.addr)
	if err == nil {
		addr := strings.ToLower(name)
		for i, n := range mailboxNames(lists) {
			if n == name || lists[i].Address == addr {
				return lists[i], members[i], nil
			}
		}
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.List{}, store.Member{}, no(imap.ResponseCodeNonExistent, "No mailbox %q: there is one for each list you are a member of", name)
	}
	return store.List{}, store.Member{}, err
}

// current checks, at the start of a command on the selected mailbox, that its list still exists
// and the logged-in address is still a member.
func (s *session) current(tx membership) (store.Member, error) {
	sel := s.sel
	if sel == nil {
		return store.Member{}, no("", "No mailbox selected")
	}
	l, err := tx.List(sel.list)
	if errors.Is(err, store.ErrNotFound) || err == nil && !l.Created.Equal(sel.created) {
		return store.Member{}, no(imap.ResponseCodeNonExistent, "The list %s no longer exists", sel.list)
	} else if err != nil {
		return store.Member{}, err
	}
	m, err := tx.Member(sel.list, s.addr)
	if errors.Is(err, store.ErrNotFound) {
		return m, no(imap.ResponseCodeNoPerm, "%s is no longer a member of %s", s.addr, sel.list)
	}
	return m, err
}

func (s *session) Close() error {
	s.mu.Lock()
	s.sel = nil
	s.mu.Unlock()
	s.log.Debug("imap connection closed")
	metrics.IMAPSessions.Dec()
	return nil
}

func (s *session) Login(username, password string) error {
	// The app password is kept under the member's normal form (domain in A-labels); a mail
	// client may be set up with the domain in Unicode or in A-labels, in any case. A name that
	// is no address is looked up as typed, and fails like any unknown name.
	addr := strings.ToLower(strings.TrimSpace(username))
	if a, err := mailaddr.Parse(username); err == nil {
		addr = a.String()
	}
	if reason, err := s.srv.authenticate(s.log, s.remote, addr, password); err != nil {
		s.log.Info("imap login refused", "address", addr, "reason", reason)
		result := "failed"
		if errors.Is(err, errThrottled) {
			result = "throttled"
		}
		metrics.IMAPLogins.WithLabelValues(result).Inc()
		return err
	}
	metrics.IMAPLogins.WithLabelValues("ok").Inc()
	s.mu.Lock()
	s.addr = addr
	s.mu.Unlock()
	s.log = s.log.With("address", addr)
	s.log.Info("imap login")
	return nil
}

func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sel = nil
	var (
		sel  *selected
		data *imap.SelectData
	)
	err := s.srv.st.View(func(tx store.Tx) error {
		l, m, err := s.lookup(tx, name)
		if err != nil {
			return err
		}
		gen := s.srv.flagGen(flagsKey{l.Address, m.ID}) // before the flags are read
		flags, err := flagMap(tx, l.Address, m.ID)
		if err != nil {
			return err
		}
		sel = &selected{list: l.Address, created: l.Created, readOnly: options.ReadOnly, member: m.ID, flags: flags, flagGen: gen}
		last, err := tx.LastSeq(l.Address)
		if err != nil {
			return err
		}
		if last > math.MaxUint32 {
			return fmt.Errorf("post %d of %s: sequence beyond IMAP's 32-bit UIDs", last, l.Address)
		}
		// The archive holds exactly the posts 1…LastSeq (store.Archive): UID i is message i,
		// known without reading a post's record (a 100,000-post mailbox opens in
		// milliseconds). The first unseen one is the first without \Seen in the member's flags.
		sel.uids = make([]imap.UID, last)
		var firstUnseen uint32
		for i := range sel.uids {
			sel.uids[i] = imap.UID(i + 1)
			if firstUnseen == 0 && flags[uint64(i+1)]&store.FlagSeen == 0 {
				firstUnseen = uint32(i + 1)
			}
		}
		permanent := mailboxFlags
		if options.ReadOnly {
			permanent = []imap.Flag{} // RFC 9051 §6.3.3: nothing can be changed after EXAMINE
		}
		data = &imap.SelectData{
			Flags:             mailboxFlags,
			PermanentFlags:    permanent,
			NumMessages:       uint32(len(sel.uids)),
			FirstUnseenSeqNum: firstUnseen,
			UIDNext:           imap.UID(last) + 1,
			UIDValidity:       uidValidity(l),
		}
		sel.uidValidity = data.UIDValidity
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.sel = sel
	return data, nil
}

func (s *session) Unselect() error {
	s.mu.Lock()
	s.sel = nil
	s.mu.Unlock()
	return nil
}

func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		// RFC 9051 §6.3.9: an empty pattern asks for the hierarchy delimiter.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	var out []imap.ListData
	err := s.srv.st.View(func(tx store.Tx) error {
		out = out[:0]
		lists, members, err := tx.ListsOf(s.addr)
		if err != nil {
			return err
		}
		names := mailboxNames(lists)
		for i, l := range lists {
			match := false
			for _, p := range patterns {
				if imapserver.MatchList(names[i], delim, ref, p) {
					match = true
					break
				}
			}
			if !match {
				continue
			}
			// Every list is "subscribed": clients that show only subscribed folders (LSUB)
			// must see them all.
			data := imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoInferiors}, Delim: delim, Mailbox: names[i]}
			if options.SelectSubscribed || options.ReturnSubscribed {
				data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
			}
			if options.ReturnStatus != nil {
				if data.Status, err = status(tx, names[i], l, members[i], options.ReturnStatus); err != nil {
					return err
				}
			}
			out = append(out, data)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := range out {
		if err := w.WriteList(&out[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	var data *imap.StatusData
	err := s.srv.st.View(func(tx store.Tx) error {
		l, m, err := s.lookup(tx, name)
		if err != nil {
			return err
		}
		data, err = status(tx, name, l, m, options)
		return err
	})
	return data, err
}

// status answers STATUS (and LIST RETURN (STATUS)). Every item asked for is filled in: the
// library writes each one it was asked for.
// name is the mailbox's name as the client wrote it (RFC 9051 §7.4: STATUS answers with it).
func status(tx mailbox, name string, l store.List, m store.Member, options *imap.StatusOptions) (*imap.StatusData, error) {
	last, err := tx.LastSeq(l.Address)
	if err != nil {
		return nil, err
	}
	data := &imap.StatusData{
		Mailbox:     name,
		UIDNext:     imap.UID(last) + 1,
		UIDValidity: uidValidity(l),
	}
	var messages, unseen, zero uint32
	var size, zero64 int64
	if options.NumMessages || options.NumUnseen || options.Size {
		var flags map[uint64]byte
		if options.NumUnseen {
			var err error
			if flags, err = flagMap(tx, l.Address, m.ID); err != nil {
				return nil, err
			}
		}
		err := tx.Posts(l.Address, func(p store.Post) error {
			messages++
			size += int64(p.Size)
			if flags[p.Seq]&store.FlagSeen == 0 {
				unseen++
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if options.NumMessages {
		data.NumMessages = &messages
	}
	if options.NumUnseen {
		data.NumUnseen = &unseen
	}
	if options.Size {
		data.Size = &size
	}
	if options.NumDeleted {
		data.NumDeleted = &zero
	}
	if options.NumRecent {
		data.NumRecent = &zero
	}
	if options.DeletedStorage {
		data.DeletedStorage = &zero64
	}
	return data, nil
}

func (s *session) Subscribe(name string) error {
	return s.srv.st.View(func(tx store.Tx) error {
		_, _, err := s.lookup(tx, name)
		return err
	})
}

// Unsubscribe is accepted and changes nothing: the lists a member belongs to are what they see.
func (s *session) Unsubscribe(string) error { return nil }

func (s *session) Create(string, *imap.CreateOptions) error { return readOnly("CREATE") }
func (s *session) Delete(string) error                      { return readOnly("DELETE") }
func (s *session) Rename(string, string, *imap.RenameOptions) error {
	return readOnly("RENAME")
}

func (s *session) Append(string, imap.LiteralReader, *imap.AppendOptions) (*imap.AppendData, error) {
	return nil, no(imap.ResponseCodeCannot, "APPEND is not possible: list archives are read-only; to post, mail the list")
}

func (s *session) Copy(imap.NumSet, string) (*imap.CopyData, error) {
	return nil, readOnly("COPY")
}

// Move makes MOVE answer NO [CANNOT] like COPY; MOVE is not advertised.
func (s *session) Move(*imapserver.MoveWriter, imap.NumSet, string) error {
	return readOnly("MOVE")
}

// Expunge refuses EXPUNGE and UID EXPUNGE. CLOSE expunges too, with a writer that has no
// connection (it must not report expunges): there nothing is to be removed, and CLOSE must
// still close the mailbox.
func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	if uids == nil && (w == nil || *w == (imapserver.ExpungeWriter{})) {
		return nil
	}
	return readOnly("EXPUNGE")
}

// Poll tells the client of posts archived since its last command.
func (s *session) Poll(w *imapserver.UpdateWriter, _ bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pollLocked(w)
}

// pollLocked adds new posts to the selected mailbox and announces them with EXISTS, then
// reports flags another session of the member changed. A store error is logged, not returned:
// the library drops the connection on a Poll error.
func (s *session) pollLocked(w *imapserver.UpdateWriter) error {
	sel := s.sel
	if sel == nil {
		return nil
	}
	var (
		fresh []imap.UID
		flags map[uint64]byte // read when another session changed them
		gen   uint64
	)
	stale := false
	err := s.srv.st.View(func(tx store.Tx) error {
		m, err := s.current(tx)
		if err != nil {
			return nil // gone; the next command on it says so
		}
		if stale, err = sel.stale(tx); err != nil || stale {
			return err
		}
		if gen = s.srv.flagGen(flagsKey{sel.list, m.ID}); gen != sel.flagGen && m.ID == sel.member {
			if flags, err = flagMap(tx, sel.list, m.ID); err != nil {
				return err
			}
		}
		last := uint64(sel.lastUID())
		if newest, err := tx.LastSeq(sel.list); err != nil || newest <= last {
			return err
		}
		return tx.PostsAfter(sel.list, last, func(p store.Post, _ []byte) error {
			if p.Seq > math.MaxUint32 {
				return fmt.Errorf("post %d of %s: sequence beyond IMAP's 32-bit UIDs", p.Seq, sel.list)
			}
			fresh = append(fresh, imap.UID(p.Seq))
			return nil
		})
	})
	if err != nil {
		s.log.Error("imap: look for new posts", "list", sel.list, "err", err)
		return nil
	}
	if stale {
		// RFC 9051 §2.3.1.1: a UID names one message for as long as UIDVALIDITY stays, and a
		// selected mailbox's UIDVALIDITY cannot change: the session ends (the library drops
		// the connection on a Poll error), and the client's next SELECT sees the new one.
		s.log.Info("imap: a post of the selected mailbox was redacted; the session ends", "list", sel.list)
		return errRedacted
	}
	if len(fresh) > 0 {
		sel.uids = append(sel.uids, fresh...)
		if err := w.WriteNumMessages(uint32(len(sel.uids))); err != nil {
			return err
		}
	}
	if flags == nil {
		return nil
	}
	var changed []uint64
	for uid, f := range flags {
		if sel.flags[uid] != f {
			changed = append(changed, uid)
		}
	}
	for uid, f := range sel.flags {
		if _, ok := flags[uid]; !ok && f != 0 {
			changed = append(changed, uid)
		}
	}
	slices.Sort(changed)
	sel.flags, sel.flagGen = flags, gen
	for _, uid := range changed {
		if i, ok := slices.BinarySearch(sel.uids, imap.UID(uid)); ok {
			if err := w.WriteMessageFlags(uint32(i)+1, imap.UID(uid), flagList(flags[uid])); err != nil {
				return err
			}
		}
	}
	return nil
}

// Idle reports new posts as they are archived: at each Notify, and every pollEvery in case a
// Notify was missed (or the post came from another process, like crewmail import).
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	tick := time.NewTicker(s.srv.pollEvery)
	defer tick.Stop()
	for {
		changed := s.srv.notified()
		s.mu.Lock()
		err := s.pollLocked(w)
		s.mu.Unlock()
		if err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-s.srv.ctx.Done():
			return nil
		case <-changed:
		case <-tick.C:
		}
	}
}
