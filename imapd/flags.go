package imapd

import (
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"crewmail/store"
)

// Store changes the member's own \Seen and \Flagged flags (RFC 9051 §6.4.6), kept in the store
// across sessions. Any other flag would change the archive for nobody but pretend otherwise, so
// the whole command is refused.
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, sf *imap.StoreFlags, _ *imap.StoreOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sel := s.sel
	if sel == nil {
		return no("", "No mailbox selected")
	}
	if sel.readOnly {
		return no("", "The mailbox was opened with EXAMINE (read-only); SELECT it to change \\Seen or \\Flagged")
	}
	var bits byte
	for _, f := range sf.Flags {
		b := flagBit(f)
		if b == 0 {
			return no(imap.ResponseCodeCannot, "Cannot set %s: list archives are read-only; only \\Seen and \\Flagged can be set", f)
		}
		bits |= b
	}
	idx := sel.resolve(numSet)
	result := make([]byte, len(idx))
	set := map[uint64]byte{}
	before := s.srv.flagGen(flagsKey{sel.list, sel.member})
	err := s.srv.st.Update(func(tx store.Tx) error {
		clear(set)
		m, err := s.current(tx)
		if err != nil {
			return err
		}
		cur, err := flagMap(tx, sel.list, m.ID)
		if err != nil {
			return err
		}
		for i, k := range idx {
			uid := uint64(sel.uids[k])
			old, f := cur[uid], byte(0)
			switch sf.Op {
			case imap.StoreFlagsSet:
				f = bits
			case imap.StoreFlagsAdd:
				f = old | bits
			case imap.StoreFlagsDel:
				f = old &^ bits
			}
			if f != old {
				if err := tx.SetFlags(sel.list, m.ID, uid, f); err != nil {
					return err
				}
				set[uid] = f
			}
			result[i] = f
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Told to the client below (or, with .SILENT, known to it already: RFC 9051 §6.4.6).
	s.setOwn(sel, before, set)
	if sf.Silent {
		return nil
	}
	for i, k := range idx {
		rw := w.CreateMessage(uint32(k) + 1)
		rw.WriteUID(sel.uids[k])
		rw.WriteFlags(flagList(result[i]))
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}
