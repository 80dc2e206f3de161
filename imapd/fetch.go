package imapd

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"crewmail/internal/mimetree"
	"crewmail/store"
)

// A FETCH reads posts in batches of at most this many messages or bytes, each batch in a short
// read transaction, and writes them out before reading the next: a FETCH 1:* of a huge archive
// holds one batch in memory, and a slow client never holds a transaction open.
const (
	batchMessages = 256
	batchBytes    = 4 << 20
)

// resolve returns the indices in sel.uids of the messages numSet names, ascending, once each.
// "*" is the last message (RFC 9051 §6.4.8: "n:*" includes the last UID even when n is larger).
func (sel *selected) resolve(numSet imap.NumSet) []int {
	n := len(sel.uids)
	var idx []int
	switch set := numSet.(type) {
	case imap.SeqSet:
		for _, r := range set {
			start, stop := static(r.Start, r.Stop, uint32(n))
			for i := start; i >= 1 && i <= stop && int(i) <= n; i++ {
				idx = append(idx, int(i)-1)
			}
		}
	case imap.UIDSet:
		if imap.IsSearchRes(set) {
			return nil // SEARCHRES is not offered: "$" names nothing
		}
		for _, r := range set {
			start, stop := static(uint32(r.Start), uint32(r.Stop), uint32(sel.lastUID()))
			for i := sort.Search(n, func(i int) bool { return uint32(sel.uids[i]) >= start }); i < n && uint32(sel.uids[i]) <= stop; i++ {
				idx = append(idx, i)
			}
		}
	}
	sort.Ints(idx)
	out := idx[:0]
	for i, v := range idx {
		if i == 0 || v != idx[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// static turns a range that may hold "*" (0) into numbers, last being the largest in use.
func static(start, stop, last uint32) (uint32, uint32) {
	if start == 0 {
		start = last
	}
	if stop == 0 {
		stop = last
	}
	if start > stop {
		start, stop = stop, start
	}
	return start, stop
}

// fetched is a post read for FETCH.
type fetched struct {
	idx  int // in selected.uids
	post store.Post
	raw  []byte // nil when no item needs the bytes
}

// needsRecord: an item is read from the post's record. UID and FLAGS are not: UID i is message
// i, and flags are the member's.
func needsRecord(o *imap.FetchOptions) bool {
	return needsBytes(o) || o.InternalDate || o.RFC822Size
}

func needsBytes(o *imap.FetchOptions) bool {
	return o.Envelope || o.BodyStructure != nil || len(o.BodySection) > 0 || len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0
}

// setsSeen: RFC 9051 §6.4.5, BODY[…] and BINARY[…] without .PEEK set \Seen — unless the
// mailbox was opened with EXAMINE.
func setsSeen(o *imap.FetchOptions, sel *selected) bool {
	if sel.readOnly {
		return false
	}
	for _, bs := range o.BodySection {
		if !bs.Peek {
			return true
		}
	}
	for _, bs := range o.BinarySection {
		if !bs.Peek {
			return true
		}
	}
	return false
}

func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sel := s.sel
	if sel == nil {
		return no("", "No mailbox selected")
	}
	idx := sel.resolve(numSet)
	markSeen := setsSeen(options, sel)
	wantFlags := options.Flags || markSeen
	var (
		member store.Member
		flags  map[uint64]byte
	)
	err := s.srv.st.View(func(tx store.Tx) error {
		var err error
		if member, err = s.current(tx); err != nil {
			return err
		}
		// The UIDs the client holds name other bytes since a redaction (RFC 9051 §2.3.1.1).
		if stale, err := sel.stale(tx); err != nil || stale {
			if err == nil {
				err = no("", "a message of this mailbox was redacted; select it again")
			}
			return err
		}
		if wantFlags {
			flags, err = flagMap(tx, sel.list, member.ID)
		}
		return err
	})
	if err != nil {
		return err
	}
	withBytes, withRecord := needsBytes(options), needsRecord(options)
	var batch []fetched
	for len(idx) > 0 {
		var used int
		read := func(tx store.Archive) error {
			batch, used = batch[:0], 0
			size := 0
			for used < len(idx) && len(batch) < batchMessages && size < batchBytes {
				i := idx[used]
				used++
				f := fetched{idx: i, post: store.Post{Seq: uint64(sel.uids[i])}}
				var err error
				switch {
				case withBytes:
					f.post, f.raw, err = tx.Post(sel.list, uint64(sel.uids[i]))
				case withRecord:
					f.post, err = tx.PostMeta(sel.list, uint64(sel.uids[i]))
				}
				if errors.Is(err, store.ErrNotFound) {
					continue // not in the archive any more: nothing to say about it
				} else if err != nil {
					return err
				}
				size += len(f.raw)
				batch = append(batch, f)
			}
			return nil
		}
		var err error
		if withRecord {
			err = s.srv.st.View(func(tx store.Tx) error { return read(tx) })
		} else {
			err = read(nil) // UID and FLAGS only: nothing to read
		}
		if err != nil {
			return err
		}
		idx = idx[used:]
		changed := map[uint64]bool{}
		if markSeen {
			if changed, err = s.markSeen(sel, member, batch, flags); err != nil {
				return err
			}
		}
		for i := range batch {
			f := &batch[i]
			uid := uint64(sel.uids[f.idx])
			if err := writeMessage(w, f, options, flags[uid], options.Flags || changed[uid]); err != nil {
				return err
			}
		}
	}
	return nil
}

// markSeen sets \Seen on the posts of batch that lack it, updating flags, and returns which
// changed (RFC 9051 §6.4.5: their FETCH responses then carry FLAGS).
func (s *session) markSeen(sel *selected, member store.Member, batch []fetched, flags map[uint64]byte) (map[uint64]bool, error) {
	set := map[uint64]byte{}
	for _, f := range batch {
		uid := uint64(sel.uids[f.idx])
		if old := flags[uid]; old&store.FlagSeen == 0 {
			set[uid] = old | store.FlagSeen
		}
	}
	if len(set) == 0 {
		return nil, nil
	}
	before := s.srv.flagGen(flagsKey{sel.list, sel.member})
	err := s.srv.st.Update(func(tx store.Tx) error {
		if m, err := tx.Member(sel.list, s.addr); err != nil || m.ID != member.ID {
			return err // removed meanwhile: nothing to keep
		}
		for uid, f := range set {
			if err := tx.SetFlags(sel.list, member.ID, uid, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err == nil {
		s.setOwn(sel, before, set) // the FETCH responses below carry them
	}
	changed := make(map[uint64]bool, len(set))
	for uid, f := range set {
		flags[uid] = f
		changed[uid] = true
	}
	return changed, nil
}

func writeMessage(w *imapserver.FetchWriter, f *fetched, o *imap.FetchOptions, flags byte, withFlags bool) error {
	rw := w.CreateMessage(uint32(f.idx) + 1)
	// Always the UID: required for UID FETCH (RFC 9051 §6.4.9), harmless otherwise.
	rw.WriteUID(imap.UID(f.post.Seq))
	if withFlags {
		rw.WriteFlags(flagList(flags))
	}
	if o.InternalDate {
		rw.WriteInternalDate(internalDate(f.post))
	}
	if o.RFC822Size {
		size := int64(f.post.Size)
		if f.raw != nil {
			size = int64(len(f.raw))
		}
		rw.WriteRFC822Size(size)
	}
	if o.Envelope {
		rw.WriteEnvelope(envelope(f.raw))
	}
	if o.BodyStructure != nil {
		rw.WriteBodyStructure(bodyStructure(f.raw))
	}
	// After a write error, keep going through the items (each fails at once) so that the
	// response writer is closed: it holds the connection's encoder until then.
	var err error
	keep := func(e error) {
		if err == nil {
			err = e
		}
	}
	for _, bs := range o.BodySection {
		b := bodySection(f.raw, bs)
		keep(writeLiteral(rw.WriteBodySection(bs, int64(len(b))), b))
	}
	for _, bs := range o.BinarySection {
		b := binarySection(f.raw, bs)
		keep(writeLiteral(rw.WriteBinarySection(bs, int64(len(b))), b))
	}
	for _, bs := range o.BinarySectionSize {
		rw.WriteBinarySectionSize(bs, binarySize(f.raw, bs))
	}
	keep(rw.Close())
	return err
}

// internalDate is when the post was received; RFC 9051 §2.3.3 wants one for every message.
func internalDate(p store.Post) time.Time {
	switch {
	case !p.Received.IsZero():
		return p.Received
	case !p.Date.IsZero():
		return p.Date
	}
	return time.Unix(0, 0).UTC()
}

func writeLiteral(wc io.WriteCloser, b []byte) error {
	_, werr := wc.Write(b)
	cerr := wc.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

// headerEnd is where raw's header ends: after the empty line that closes it, or len(raw) when
// there is none.
func headerEnd(raw []byte) int {
	if bytes.HasPrefix(raw, []byte("\r\n")) {
		return 2
	}
	if bytes.HasPrefix(raw, []byte("\n")) {
		return 1
	}
	end := len(raw)
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		end = i + 4
	}
	if i := bytes.Index(raw, []byte("\n\n")); i >= 0 && i+2 < end {
		end = i + 2
	}
	return end
}

func partial(b []byte, p *imap.SectionPartial) []byte {
	if p == nil {
		return b
	}
	if p.Offset >= int64(len(b)) || p.Offset < 0 {
		return []byte{}
	}
	b = b[p.Offset:]
	if p.Size >= 0 && p.Size < int64(len(b)) {
		b = b[:p.Size]
	}
	return b
}

// bodySection is a BODY[…] section. The whole message, its header and its text are cut from
// the archived bytes, so BODY[] is byte for byte what was archived; deeper sections are found
// in the structure BODYSTRUCTURE shows (mimetree's limits included: a section inside a flat
// part is empty).
func bodySection(raw []byte, bs *imap.FetchItemBodySection) (out []byte) {
	if len(bs.Part) == 0 && len(bs.HeaderFields) == 0 && len(bs.HeaderFieldsNot) == 0 {
		switch bs.Specifier {
		case imap.PartSpecifierNone:
			return partial(raw, bs.Partial)
		case imap.PartSpecifierHeader:
			return partial(raw[:headerEnd(raw)], bs.Partial)
		case imap.PartSpecifierText:
			return partial(raw[headerEnd(raw):], bs.Partial)
		}
	}
	defer func() {
		if recover() != nil {
			out = []byte{}
		}
	}()
	root, err := mimetree.Walk(raw)
	if err != nil {
		// A header that cannot be read: the message is its text (bodyStructure), part 1.
		if slices.Equal(bs.Part, []int{1}) && bs.Specifier == imap.PartSpecifierNone {
			return partial(raw[headerEnd(raw):], bs.Partial)
		}
		return []byte{}
	}
	p := section(root, bs.Part)
	if p == nil {
		return []byte{}
	}
	// RFC 9051 §6.4.5: HEADER and TEXT of a part are those of the message it carries.
	if len(bs.Part) > 0 && (bs.Specifier == imap.PartSpecifierHeader || bs.Specifier == imap.PartSpecifierText) && p.Message() {
		p = p.Children[0]
	}
	h := p.Header.Copy()
	if len(bs.HeaderFields) > 0 {
		keep := map[string]bool{}
		for _, k := range bs.HeaderFields {
			keep[strings.ToLower(k)] = true
		}
		for f := h.Fields(); f.Next(); {
			if !keep[strings.ToLower(f.Key())] {
				f.Del()
			}
		}
	}
	for _, k := range bs.HeaderFieldsNot {
		h.Del(k)
	}
	var buf bytes.Buffer
	withHeader := bs.Specifier != imap.PartSpecifierText
	if bs.Specifier == imap.PartSpecifierNone {
		withHeader = len(bs.Part) == 0
	}
	if withHeader {
		if err := textproto.WriteHeader(&buf, h.Header); err != nil {
			return []byte{}
		}
	}
	if bs.Specifier == imap.PartSpecifierNone || bs.Specifier == imap.PartSpecifierText {
		buf.Write(body(raw, p))
	}
	return partial(buf.Bytes(), bs.Partial)
}

// section returns the part that an IMAP section number names (RFC 9051 §6.4.5), nil when there
// is none. A part that is not a multipart is its own part 1 (the message's text when it is the
// message); the parts of a carried message are numbered from that of the message/rfc822 part.
func section(root *mimetree.Part, path []int) *mimetree.Part {
	p := root
	if !root.Multipart() && len(path) > 0 && path[0] == 1 {
		path = path[1:]
	}
	for _, n := range path {
		if p.Message() {
			p = p.Children[0]
		}
		if !p.Multipart() {
			if n != 1 {
				return nil
			}
			continue
		}
		if n < 1 || n > len(p.Children) {
			return nil
		}
		p = p.Children[n-1]
	}
	return p
}

// body returns the body of p, a part of the tree walked from raw, as it was sent.
func body(raw []byte, p *mimetree.Part) []byte {
	w := mimetree.Walker{Limits: mimetree.Default, Keep: p.Pos()}
	again, err := w.Walk(raw)
	if err != nil {
		return nil
	}
	for _, i := range p.Pos() {
		if i >= len(again.Children) {
			return nil
		}
		again = again.Children[i]
	}
	return again.Body
}

// binarySection is a BINARY[…] section (RFC 3516): the part's body with its transfer encoding
// undone, with the header for the whole message.
func binarySection(raw []byte, bs *imap.FetchItemBinarySection) (out []byte) {
	defer func() {
		if recover() != nil {
			out = []byte{}
		}
	}()
	root, err := mimetree.Walk(raw)
	if err != nil {
		return []byte{}
	}
	p := section(root, bs.Part)
	if p == nil {
		return []byte{}
	}
	// An unknown transfer encoding or charset still gives an entity (with an error saying so)
	// whose body is the bytes as they are: those are what BINARY returns then.
	e, _ := gomessage.New(p.Header, bytes.NewReader(body(raw, p)))
	if e == nil {
		return []byte{}
	}
	var buf bytes.Buffer
	if len(bs.Part) == 0 {
		if err := textproto.WriteHeader(&buf, p.Header.Header); err != nil {
			return []byte{}
		}
	}
	if _, err := io.Copy(&buf, e.Body); err != nil && buf.Len() == 0 {
		return []byte{}
	}
	return partial(buf.Bytes(), bs.Partial)
}

func binarySize(raw []byte, bs *imap.FetchItemBinarySectionSize) uint32 {
	return uint32(len(binarySection(raw, &imap.FetchItemBinarySection{Part: bs.Part})))
}

// envelope is the ENVELOPE of raw; nil (all NIL) when its header cannot be read.
func envelope(raw []byte) (env *imap.Envelope) {
	defer func() {
		if recover() != nil {
			env = nil
		}
	}()
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return nil
	}
	return imapserver.ExtractEnvelope(h)
}

// bodyStructure is the BODYSTRUCTURE of raw (RFC 9051 §7.5.2), as mimetree walks it: within its
// limits, a part beyond them being one application/octet-stream part. go-imap's own
// ExtractBodyStructure knows no limit: it read a post of 10,000 nested message/rfc822 parts
// into 2 GB.
func bodyStructure(raw []byte) (bs imap.BodyStructure) {
	defer func() {
		if recover() != nil {
			bs = plainPart(len(raw), bytes.Count(raw, []byte("\n")))
		}
	}()
	root, err := mimetree.Walk(raw)
	if err != nil {
		text := raw[headerEnd(raw):]
		return plainPart(len(text), bytes.Count(text, []byte("\n")))
	}
	return structure(root)
}

func structure(p *mimetree.Part) imap.BodyStructure {
	h := p.Header
	primary, sub, _ := strings.Cut(p.Type, "/")
	if p.Multipart() {
		bs := &imap.BodyStructureMultiPart{Subtype: sub, Extended: &imap.BodyStructureMultiPartExt{
			Params:      p.Params,
			Disposition: disposition(h),
			Language:    language(h),
			Location:    h.Get("Content-Location"),
		}}
		for _, c := range p.Children {
			bs.Children = append(bs.Children, structure(c))
		}
		return bs
	}
	if p.Broken {
		// A multipart whose parts cannot be found: its text is all there is.
		return plainPart(int(p.Size), int(p.Lines))
	}
	bs := &imap.BodyStructureSinglePart{
		Type:        primary,
		Subtype:     sub,
		Params:      p.Params,
		ID:          h.Get("Content-Id"),
		Description: h.Get("Content-Description"),
		Encoding:    h.Get("Content-Transfer-Encoding"),
		Size:        uint32(p.Size),
		Extended: &imap.BodyStructureSinglePartExt{
			Disposition: disposition(h),
			Language:    language(h),
			Location:    h.Get("Content-Location"),
		},
	}
	if bs.Encoding == "" {
		bs.Encoding = "7bit" // RFC 2045 §6.1
	}
	switch {
	case p.Message():
		inner := p.Children[0]
		bs.MessageRFC822 = &imap.BodyStructureMessageRFC822{
			Envelope:      imapserver.ExtractEnvelope(inner.Header.Header),
			BodyStructure: structure(inner),
			NumLines:      p.Lines,
		}
	case p.Flat || p.Type == "message/rfc822" || p.Type == "message/global":
		// Not looked into: beyond a limit, or a carried message that is not one. Its bytes are
		// there, as a file.
		bs.Type, bs.Subtype, bs.Params = "application", "octet-stream", nil
	case primary == "text":
		bs.Text = &imap.BodyStructureText{NumLines: p.Lines}
	}
	return bs
}

func disposition(h gomessage.Header) *imap.BodyStructureDisposition {
	disp, params, _ := h.ContentDisposition()
	if disp == "" {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: disp, Params: params}
}

func language(h gomessage.Header) []string {
	v := h.Get("Content-Language")
	if v == "" {
		return nil
	}
	l := strings.Split(v, ",")
	for i, lang := range l {
		l[i] = strings.TrimSpace(lang)
	}
	return l
}

// plainPart is what a part that cannot be parsed is taken for (RFC 2045 §5.2: text/plain).
func plainPart(size, lines int) *imap.BodyStructureSinglePart {
	return &imap.BodyStructureSinglePart{
		Type:     "text",
		Subtype:  "plain",
		Params:   map[string]string{"charset": "us-ascii"},
		Encoding: "7bit",
		Size:     uint32(size),
		Text:     &imap.BodyStructureText{NumLines: int64(lines)},
		Extended: &imap.BodyStructureSinglePartExt{},
	}
}
