package imapd

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sort"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

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
	err := s.srv.st.View(func(tx *store.Tx) error {
		var err error
		if member, err = s.current(tx); err != nil {
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
	withBytes := needsBytes(options)
	var batch []fetched
	for len(idx) > 0 {
		var used int
		err := s.srv.st.View(func(tx *store.Tx) error {
			batch, used = batch[:0], 0
			size := 0
			for used < len(idx) && len(batch) < batchMessages && size < batchBytes {
				i := idx[used]
				used++
				f := fetched{idx: i}
				var err error
				if withBytes {
					f.post, f.raw, err = tx.Post(sel.list, uint64(sel.uids[i]))
				} else {
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
		})
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
	err := s.srv.st.Update(func(tx *store.Tx) error {
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
// the archived bytes, so BODY[] is byte for byte what was archived; deeper sections go through
// the library's parser.
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
	return imapserver.ExtractBodySection(bytes.NewReader(raw), bs)
}

func binarySection(raw []byte, bs *imap.FetchItemBinarySection) (out []byte) {
	defer func() {
		if recover() != nil {
			out = []byte{}
		}
	}()
	return imapserver.ExtractBinarySection(bytes.NewReader(raw), bs)
}

func binarySize(raw []byte, bs *imap.FetchItemBinarySectionSize) (n uint32) {
	defer func() {
		if recover() != nil {
			n = 0
		}
	}()
	return imapserver.ExtractBinarySectionSize(bytes.NewReader(raw), bs)
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

// bodyStructure is the BODYSTRUCTURE of raw, made safe to write: the library panics on a
// multipart without parts (a broken boundary) or a missing structure.
func bodyStructure(raw []byte) (bs imap.BodyStructure) {
	defer func() {
		if recover() != nil {
			bs = plainPart(len(raw), bytes.Count(raw, []byte("\n")))
		}
	}()
	bs = imapserver.ExtractBodyStructure(bytes.NewReader(raw))
	if mp, ok := bs.(*imap.BodyStructureMultiPart); ok && len(mp.Children) == 0 {
		// A multipart whose boundary never shows: its text is all there is.
		text := raw[headerEnd(raw):]
		return plainPart(len(text), bytes.Count(text, []byte("\n")))
	}
	return sanitize(bs)
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

func sanitize(bs imap.BodyStructure) imap.BodyStructure {
	switch b := bs.(type) {
	case *imap.BodyStructureMultiPart:
		if b == nil || len(b.Children) == 0 {
			return plainPart(0, 0)
		}
		for i, c := range b.Children {
			b.Children[i] = sanitize(c)
		}
		if b.Subtype == "" {
			b.Subtype = "mixed"
		}
		if b.Extended == nil {
			b.Extended = &imap.BodyStructureMultiPartExt{}
		}
		return b
	case *imap.BodyStructureSinglePart:
		if b == nil {
			return plainPart(0, 0)
		}
		if b.Type == "" || b.Subtype == "" {
			b.Type, b.Subtype = "text", "plain"
		}
		if b.Type == "text" && b.Text == nil {
			b.Text = &imap.BodyStructureText{}
		}
		if m := b.MessageRFC822; m != nil {
			m.BodyStructure = sanitize(m.BodyStructure)
		}
		if b.Extended == nil {
			b.Extended = &imap.BodyStructureSinglePartExt{}
		}
		return b
	}
	return plainPart(0, 0)
}
