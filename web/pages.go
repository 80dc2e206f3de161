package web

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message"

	"crewmail/internal/listcopy"
	"crewmail/internal/mbox"
	"crewmail/internal/mimetree"
	"crewmail/internal/replytext"
	"crewmail/internal/vocab"
	"crewmail/store"
)

// home is the sign-in form for a visitor, and her lists for a member.
func (r *Reader) home(w http.ResponseWriter, req *http.Request) {
	v := r.visitor(w, req)
	if v.session == nil {
		r.render(w, req, http.StatusOK, "home", v, homeView{})
		return
	}
	var view listsView
	err := r.st.View(func(tx store.Tx) error {
		ls, ms, err := tx.ListsOf(v.session.Address)
		if err != nil {
			return err
		}
		view.Lists, view.Paused = view.Lists[:0], nil
		for i, l := range ls {
			if !ms[i].Paused.IsZero() {
				view.Paused = append(view.Paused, "Mail from "+listName(l)+" to you has been paused since "+r.when(ms[i].Paused, r.zone(l))+" because it bounced.")
			}
			last, err := tx.LastSeq(l.Address)
			if err != nil {
				return err
			}
			looked, err := tx.Looked(v.session.Address, l.Address)
			if err != nil {
				return err
			}
			view.Lists = append(view.Lists, listRow{Name: listName(l), Address: l.Address, URL: ListURL(r.prefix, l.Address),
				Posts: last, New: last - min(looked, last)})
		}
		return nil
	})
	if err != nil {
		r.storeFailed(w, req, v, err)
		return
	}
	r.render(w, req, http.StatusOK, "lists", v, view)
}

func listName(l store.List) string {
	if l.Name != "" {
		return l.Name
	}
	return l.Address
}

// access says whether v may read list: as a member (m is hers), or as anyone when its
// archive is public (m nil). A list she may not read is errNotFound, as one that is not there.
func access(tx store.Tx, v visitor, list string) (l store.List, m *store.Member, err error) {
	l, err = tx.List(list)
	if errors.Is(err, store.ErrNotFound) {
		return l, nil, errNotFound
	} else if err != nil {
		return l, nil, err
	}
	if v.session != nil {
		mem, err := tx.Member(list, v.session.Address)
		if err == nil {
			return l, &mem, nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return l, nil, err
		}
	}
	if l.PublicArchive {
		return l, nil, nil
	}
	return l, nil, errNotFound
}

// listPage shows a page of a list's conversations, the latest activity first.
func (r *Reader) listPage(w http.ResponseWriter, req *http.Request) {
	v := r.visitor(w, req)
	list := req.PathValue("list")
	page, err := strconv.Atoi(req.URL.Query().Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	var (
		view         listView
		member       *store.Member
		last, looked uint64
	)
	err = r.st.View(func(tx store.Tx) error {
		l, m, err := access(tx, v, list)
		if err != nil {
			return err
		}
		member = m
		idx, err := r.index.of(tx, l)
		if err != nil {
			return err
		}
		last, looked = idx.last, 0
		if m != nil {
			if looked, err = tx.Looked(m.Address, list); err != nil {
				return err
			}
		}
		view = listView{Name: listName(l), Address: l.Address, Member: m != nil, Page: page, Total: len(idx.convos),
			Search: ListURL(r.prefix, l.Address) + "search"}
		from := (page - 1) * PageSize
		if from >= len(idx.convos) && page > 1 {
			return errNotFound
		}
		to := min(from+PageSize, len(idx.convos))
		for _, c := range idx.convos[from:to] {
			row := convoRow{Subject: c.Subject, URL: ConversationURL(r.prefix, list, c.Thread), Count: len(c.Seqs),
				Proven: c.Proven, Latest: r.when(c.Latest, r.zone(l))}
			if m != nil {
				for _, s := range slices.Backward(c.Seqs) {
					if s <= looked {
						break
					}
					row.New++
				}
			}
			for i, a := range c.Authors {
				if i == 4 {
					row.More = len(c.Authors) - i
					break
				}
				row.People = append(row.People, r.person(tx, idx, l, m != nil, a, firstBy(idx, c, a)))
			}
			view.Convos = append(view.Convos, row)
		}
		if to < len(idx.convos) {
			view.Next = fmt.Sprintf("%s?page=%d", ListURL(r.prefix, list), page+1)
		}
		if page > 1 {
			view.Prev = fmt.Sprintf("%s?page=%d", ListURL(r.prefix, list), page-1)
		}
		return nil
	})
	if err != nil {
		r.pageFailed(w, req, v, err)
		return
	}
	if member != nil && page == 1 && last != looked { // a write only when there is something new
		if err := r.st.Update(func(tx store.Tx) error { return tx.PutLooked(member.Address, list, last) }); err != nil {
			r.log.Error("web reader: recording where a member looked", "err", err)
		}
	}
	r.render(w, req, http.StatusOK, "list", v, view)
}

// firstBy is the first post of c by addr.
func firstBy(idx *listIndex, c *convo, addr string) uint64 {
	for _, s := range c.Seqs {
		if idx.posts[s].From == addr {
			return s
		}
	}
	return c.Seqs[0]
}

// person is an author as a page names her: her display name, and her address for members
// only, and for nobody on a list that hides addresses; without either, the address's local
// part.
func (r *Reader) person(tx store.Archive, idx *listIndex, l store.List, member bool, addr string, seq uint64) person {
	p := person{Name: idx.name(tx, l.Address, addr, seq)}
	if member && !l.HideAddresses {
		p.Address = addr
	}
	if p.Name == "" && p.Address == "" {
		p.Name, _, _ = strings.Cut(addr, "@")
	}
	return p
}

// conversationPage shows every message of a conversation, and marks them read for a member.
func (r *Reader) conversationPage(w http.ResponseWriter, req *http.Request) {
	v := r.visitor(w, req)
	list := req.PathValue("list")
	thread, err := strconv.ParseUint(req.PathValue("thread"), 10, 64)
	if err != nil {
		r.notFound(w, req)
		return
	}
	var (
		view   convoView
		member *store.Member
		unseen []uint64
		moved  uint64
	)
	err = r.st.View(func(tx store.Tx) error {
		l, m, err := access(tx, v, list)
		if err != nil {
			return err
		}
		member = m
		idx, err := r.index.of(tx, l)
		if err != nil {
			return err
		}
		c := idx.byThread[thread]
		if c == nil {
			// A conversation merged into an older one: its first post says where it is now.
			if p, ok := idx.posts[thread]; ok && p.Thread != thread {
				moved = p.Thread
				return nil
			}
			return errNotFound
		}
		unseen = unseen[:0]
		view = convoView{ListName: listName(l), List: l.Address, ListURL: ListURL(r.prefix, l.Address), Subject: c.Subject}
		if m != nil {
			view.Mbox = ConversationURL(r.prefix, list, thread) + "/conversation.mbox"
		}
		seen, err := r.seen(tx, l, m, c.Seqs)
		if err != nil {
			return err
		}
		for _, s := range c.Seqs {
			mv, err := r.message(tx, idx, l, m, s)
			if err != nil {
				return err
			}
			mv.New = m != nil && !seen[s]
			if mv.New {
				unseen = append(unseen, s)
			}
			view.Messages = append(view.Messages, mv)
		}
		return nil
	})
	if moved != 0 {
		http.Redirect(w, req, ConversationURL(r.prefix, list, moved), http.StatusMovedPermanently)
		return
	}
	if err != nil {
		r.pageFailed(w, req, v, err)
		return
	}
	r.markSeen(list, member, unseen)
	r.render(w, req, http.StatusOK, "conversation", v, view)
}

// messagePage is a message's permalink: the message alone, with a link to its conversation.
func (r *Reader) messagePage(w http.ResponseWriter, req *http.Request) {
	v := r.visitor(w, req)
	list := req.PathValue("list")
	seq, err := strconv.ParseUint(req.PathValue("seq"), 10, 64)
	if err != nil {
		r.notFound(w, req)
		return
	}
	var (
		view   convoView
		member *store.Member
		unseen []uint64
	)
	err = r.st.View(func(tx store.Tx) error {
		unseen = nil
		l, m, err := access(tx, v, list)
		if err != nil {
			return err
		}
		member = m
		idx, err := r.index.of(tx, l)
		if err != nil {
			return err
		}
		p, ok := idx.posts[seq]
		if !ok {
			return errNotFound
		}
		mv, err := r.message(tx, idx, l, m, seq)
		if err != nil {
			return err
		}
		seen, err := r.seen(tx, l, m, []uint64{seq})
		if err != nil {
			return err
		}
		mv.New = m != nil && !seen[seq]
		if mv.New {
			unseen = []uint64{seq}
		}
		c := idx.byThread[p.Thread]
		view = convoView{ListName: listName(l), List: l.Address, ListURL: ListURL(r.prefix, l.Address), Subject: displaySubject(p.Subject),
			Conversation: ConversationURL(r.prefix, list, p.Thread), Messages: []messageView{mv}, Single: true}
		if c != nil {
			view.Count = len(c.Seqs)
		}
		return nil
	})
	if err != nil {
		r.pageFailed(w, req, v, err)
		return
	}
	r.markSeen(list, member, unseen)
	r.render(w, req, http.StatusOK, "conversation", v, view)
}

// message reads post seq of list l for a page.
func (r *Reader) message(tx store.Tx, idx *listIndex, l store.List, m *store.Member, seq uint64) (messageView, error) {
	p, raw, err := tx.Post(l.Address, seq)
	if err != nil {
		return messageView{}, err
	}
	full, _ := replytext.Read(raw) // a header that cannot be read leaves a message without text
	zone := r.zone(l)
	when := p.Date
	if when.IsZero() || when.After(p.Received) {
		when = p.Received
	}
	mv := messageView{
		Seq: seq, Anchor: fmt.Sprintf("m%d", seq), Subject: displaySubject(p.Subject),
		Author: r.person(tx, idx, l, m != nil, p.From, seq), Proven: p.Verified.ByAuthor(), Proof: proof(p),
		Time: r.when(when, zone), ISOTime: when.UTC().Format(time.RFC3339),
		Permalink: MessageURL(r.prefix, l.Address, seq),
		Blocks:    blocks(full), Trimmed: full.Trimmed,
	}
	if name := fromName(raw); name != "" {
		mv.Author.Name = name
	}
	if m != nil {
		if author, err := tx.Member(l.Address, p.From); err == nil {
			mv.Newcomer = author.Newcomer(p.Received, l.HideAddresses)
		}
		mv.Reply = mailto(r.lists.ReplyAddress(l.Address, seq), "Re: "+mv.Subject)
		mv.ReplyAuthor = mailto(r.lists.PrivateReplyAddress(l.Address, seq), "Re: "+mv.Subject)
		mv.Raw = MessageURL(r.prefix, l.Address, seq) + "/message.eml"
	}
	for i, a := range full.Attachments {
		mv.Attachments = append(mv.Attachments, attachmentView{Name: a.Name, Size: size(a.Size),
			URL: AttachmentURL(r.prefix, l.Address, seq, i+1, a.Name)})
	}
	return mv, nil
}

// proof says in words how the author of p was found to be who the From says.
func proof(p store.Post) string {
	switch p.Verified {
	case vocab.VerifiedDKIM:
		if p.AuthDomain != "" {
			return "signed by their provider (" + p.AuthDomain + ")"
		}
		return "signed by their provider"
	case vocab.VerifiedSPF:
		return "sent by their provider's mail server"
	case vocab.VerifiedConfirmed:
		return "confirmed by reply"
	case vocab.VerifiedApproved:
		return "not proven (let through by a moderator)"
	}
	return "not proven"
}

func mailto(addr, subject string) string {
	u := url.URL{Scheme: "mailto", Opaque: addr, RawQuery: "subject=" + strings.ReplaceAll(url.QueryEscape(subject), "+", "%20")}
	return u.String()
}

func size(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// seen says which of seqs member m has seen (\Seen, by IMAP or here); none for a visitor.
func (r *Reader) seen(tx store.IMAPAccess, l store.List, m *store.Member, seqs []uint64) (map[uint64]bool, error) {
	seen := map[uint64]bool{}
	if m == nil || len(seqs) == 0 {
		return seen, nil
	}
	err := flagsOf(tx, l.Address, m.ID, seqs, func(seq uint64, f byte) { seen[seq] = f&store.FlagSeen != 0 })
	return seen, err
}

var errStop = errors.New("stop")

// flagsOf calls fn with the flags of those of seqs (in order) that have any.
func flagsOf(tx store.IMAPAccess, list string, member uint64, seqs []uint64, fn func(seq uint64, f byte)) error {
	last := seqs[len(seqs)-1]
	err := tx.FlagsOf(list, member, func(seq uint64, f byte) error {
		if seq > last {
			return errStop
		}
		if _, ok := slices.BinarySearch(seqs, seq); ok {
			fn(seq, f)
		}
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return err
}

// markSeen sets \Seen on unseen, posts the member m had not seen when the page was read (one
// read state with IMAP and the digests), keeping her other flags; nothing for a visitor.
func (r *Reader) markSeen(list string, m *store.Member, unseen []uint64) {
	if m == nil || len(unseen) == 0 {
		return
	}
	err := r.st.Update(func(tx store.Tx) error {
		flags := map[uint64]byte{}
		if err := flagsOf(tx, list, m.ID, unseen, func(seq uint64, f byte) { flags[seq] = f }); err != nil {
			return err
		}
		for _, s := range unseen {
			if err := tx.SetFlags(list, m.ID, s, flags[s]|store.FlagSeen); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		r.log.Error("web reader: marking read", "list", list, "err", err)
	}
}

// messageRaw downloads a message as it was archived.
func (r *Reader) messageRaw(w http.ResponseWriter, req *http.Request) {
	v := r.visitor(w, req)
	list := req.PathValue("list")
	seq, err := strconv.ParseUint(req.PathValue("seq"), 10, 64)
	if err != nil {
		r.notFound(w, req)
		return
	}
	var raw []byte
	err = r.st.View(func(tx store.Tx) error {
		l, m, err := access(tx, v, list)
		if err != nil {
			return err
		}
		if m == nil { // the message as it came names people: members only
			return errNotFound
		}
		p, raw0, err := tx.Post(list, seq)
		if errors.Is(err, store.ErrNotFound) {
			return errNotFound
		} else if err != nil {
			return err
		}
		raw, err = r.asSent(l, p, raw0)
		return err
	})
	if err != nil {
		r.pageFailed(w, req, v, err)
		return
	}
	download(w, "message/rfc822", fmt.Sprintf("message-%d.eml", seq), int64(len(raw)))
	w.Write(raw) //nolint:errcheck // the reader went away
}

// conversationMbox downloads a conversation as an mbox file (mboxrd, RFC 4155).
func (r *Reader) conversationMbox(w http.ResponseWriter, req *http.Request) {
	v := r.visitor(w, req)
	list := req.PathValue("list")
	thread, err := strconv.ParseUint(req.PathValue("thread"), 10, 64)
	if err != nil {
		r.notFound(w, req)
		return
	}
	var buf bytes.Buffer
	err = r.st.View(func(tx store.Tx) error {
		l, m, err := access(tx, v, list)
		if err != nil {
			return err
		}
		if m == nil { // the messages as they came name people: members only
			return errNotFound
		}
		idx, err := r.index.of(tx, l)
		if err != nil {
			return err
		}
		c := idx.byThread[thread]
		if c == nil {
			return errNotFound
		}
		buf.Reset()
		mw := mbox.NewWriter(&buf)
		for _, s := range c.Seqs {
			p, raw, err := tx.Post(list, s)
			if err != nil {
				return err
			}
			if raw, err = r.asSent(l, p, raw); err != nil {
				return err
			}
			from := p.From
			if l.HideAddresses {
				from = l.Address
			}
			if err := mw.Write(from, p.Received, raw); err != nil {
				return err
			}
		}
		return mw.Flush()
	})
	if err != nil {
		r.pageFailed(w, req, v, err)
		return
	}
	download(w, "application/mbox", fmt.Sprintf("conversation-%d.mbox", thread), int64(buf.Len()))
	w.Write(buf.Bytes()) //nolint:errcheck // the reader went away
}

// attachment downloads the n-th file of a message, always as a download of bytes: a file from
// a post is never shown as a page of the reader's origin.
func (r *Reader) attachment(w http.ResponseWriter, req *http.Request) {
	v := r.visitor(w, req)
	list := req.PathValue("list")
	seq, err1 := strconv.ParseUint(req.PathValue("seq"), 10, 64)
	n, err2 := strconv.Atoi(req.PathValue("n"))
	if err1 != nil || err2 != nil || n < 1 {
		r.notFound(w, req)
		return
	}
	var (
		body []byte
		name string
	)
	err := r.st.View(func(tx store.Tx) error {
		if _, _, err := access(tx, v, list); err != nil {
			return err
		}
		_, raw, err := tx.Post(list, seq)
		if errors.Is(err, store.ErrNotFound) {
			return errNotFound
		} else if err != nil {
			return err
		}
		full, err := replytext.Read(raw)
		if err != nil || n > len(full.Attachments) {
			return errNotFound
		}
		a := full.Attachments[n-1]
		name = fileName(a.Name)
		body, err = partBody(raw, a.Pos)
		return err
	})
	if err != nil {
		r.pageFailed(w, req, v, err)
		return
	}
	download(w, "application/octet-stream", name, int64(len(body)))
	w.Write(body) //nolint:errcheck // the reader went away
}

// asSent is a post's message as a member downloads it: as archived, or on a list that hides
// addresses as its list copy (listcopy.Post: From the list, the author's address nowhere in
// the header, the private reply address as Reply-To).
func (r *Reader) asSent(l store.List, p store.Post, raw []byte) ([]byte, error) {
	if !l.HideAddresses {
		return raw, nil
	}
	return listcopy.Post(l, p, raw, listcopy.Block{Name: l.Name, Address: l.Address, Post: true}, r.lists.PrivateReplyAddress(l.Address, p.Seq))
}

// partBody is the decoded body (transfer encoding undone) of the part of raw at pos, as
// replytext.Read found it.
func partBody(raw []byte, pos []int) ([]byte, error) {
	mw := mimetree.Walker{Limits: mimetree.Default, Keep: pos,
		Descend: func(p *mimetree.Part) bool { return strings.HasPrefix(p.Type, "multipart/") }}
	root, err := mw.Walk(raw)
	if root == nil {
		return nil, err
	}
	p := root
	for _, i := range pos {
		if i >= len(p.Children) {
			return nil, errNotFound
		}
		p = p.Children[i]
	}
	var enc message.Header
	enc.Set("Content-Transfer-Encoding", p.Header.Get("Content-Transfer-Encoding"))
	e, _ := message.New(enc, bytes.NewReader(p.Body)) // an unknown encoding downloads as sent
	if e == nil {
		return p.Body, nil
	}
	return io.ReadAll(e.Body)
}

// download writes the header of a file download: never shown by the browser as a page (RFC
// 6266 attachment, the name encoded as RFC 2231 says when it is not ASCII; sandboxed; its type
// not sniffed).
func download(w http.ResponseWriter, ctype, name string, n int64) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	h.Set("Content-Security-Policy", csp+"; sandbox")
	h.Set("Cache-Control", "private, no-store")
}

// zone is the time zone list l's times are shown in.
func (r *Reader) zone(l store.List) *time.Location {
	if l.Timezone != "" {
		if z, err := time.LoadLocation(l.Timezone); err == nil {
			return z
		}
	}
	return r.cfg.Zone
}

// when is t as a page shows it: "Tue 24 Nov 2026, 10:00 CET".
func (r *Reader) when(t time.Time, zone *time.Location) string {
	return t.In(zone).Format("Mon 2 Jan 2006, 15:04 MST")
}

// pageFailed answers a page that could not be made: not found, or our failure.
func (r *Reader) pageFailed(w http.ResponseWriter, req *http.Request, v visitor, err error) {
	if errors.Is(err, errNotFound) {
		r.notFoundFor(w, req, v)
		return
	}
	r.storeFailed(w, req, v, err)
}

func (r *Reader) storeFailed(w http.ResponseWriter, req *http.Request, v visitor, err error) {
	r.log.Error("web reader: page", "path", req.URL.Path, "err", err)
	r.fail(w, req, v, http.StatusServiceUnavailable, "Something went wrong on our side. Please try again in a moment.")
}

// notFound is the one "not found" page: for a path that is not the reader's, a list that is
// not there, and a list the visitor may not read alike.
func (r *Reader) notFound(w http.ResponseWriter, req *http.Request) {
	r.notFoundFor(w, req, r.visitor(w, req))
}

func (r *Reader) notFoundFor(w http.ResponseWriter, req *http.Request, v visitor) {
	r.render(w, req, http.StatusNotFound, "notfound", v, nil)
}

func (r *Reader) fail(w http.ResponseWriter, req *http.Request, v visitor, status int, msg string) {
	r.render(w, req, status, "error", v, errorView{Message: msg})
}
