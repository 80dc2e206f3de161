package lists

import (
	"bytes"
	"fmt"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"crewmail/internal/listcopy"
	"crewmail/internal/rawmsg"
	"crewmail/store"
)

// Compose returns the message an outbox entry carries. For a post that is the list copy
// (listcopy.Post): the archived message under the list's header block, which names the member.
func (s *Service) Compose(d store.Delivery) ([]byte, error) {
	if d.Blob != 0 {
		// A message many members share (a digest): their own unsubscribe fields on top.
		var msg []byte
		err := s.st.View(func(tx store.Tx) error {
			var err error
			msg, err = tx.Blob(d.Blob)
			return err
		})
		if err != nil || d.Member == 0 {
			return msg, err
		}
		b := listcopy.Block{Unsubscribe: s.address(d.List, "unsubscribe"), OneClick: s.oneClickURL(d.List, d.Member)}
		if msg, err = b.OnTop(msg); err != nil {
			return nil, err
		}
		return toOnTop(msg, d.To)
	}
	if d.Seq == 0 {
		return d.Message, nil
	}
	var l store.List
	var p store.Post
	var raw []byte
	err := s.st.View(func(tx store.Tx) error {
		var err error
		if l, err = tx.List(d.List); err != nil {
			return err
		}
		p, raw, err = tx.Post(d.List, d.Seq)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("compose post %d of %s: %w", d.Seq, d.List, err)
	}
	var private string
	if l.HideAddresses {
		private = s.PrivateReplyAddress(l.Address, p.Seq)
	}
	msg, err := listcopy.Post(l, p, raw, s.postBlock(l, d.Member), private)
	if err != nil {
		return nil, fmt.Errorf("compose post %d of %s: %w", d.Seq, d.List, err)
	}
	return msg, nil
}

// postBlock is what a list puts on top of each post: RFC 2919 List-Id, the RFC 2369 List-*
// fields, Precedence and the loop marker that stops the post coming back through the list.
// A member's copy carries their own one-click unsubscribe link (RFC 8058), which delivery signs
// with DKIM as §4 requires.
func (s *Service) postBlock(l store.List, member uint64) listcopy.Block {
	return listcopy.Block{
		Name: l.Name, Address: l.Address, Post: true, Help: s.address(l.Address, "help"),
		Unsubscribe: s.address(l.Address, "unsubscribe"), OneClick: s.oneClickURL(l.Address, member),
		Archive: l.ArchiveURL, Precedence: true, Loop: true,
	}
}

// toOnTop puts "To: addr" on top of msg when msg has no To field: a digest is addressed to
// each member, so that Reply All on it does not copy the list.
func toOnTop(msg []byte, addr string) ([]byte, error) {
	th, err := rawmsg.ReadHeader(msg)
	if err != nil || th.Has("To") {
		return msg, err
	}
	var h mail.Header
	h.SetAddressList("To", []*mail.Address{{Address: addr}})
	var buf bytes.Buffer
	if err := textproto.WriteHeader(&buf, h.Header.Header); err != nil {
		return nil, err
	}
	buf.Truncate(buf.Len() - 2) // WriteHeader ends the block with the empty line
	buf.Write(msg)
	return buf.Bytes(), nil
}
