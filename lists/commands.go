package lists

import (
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/emersion/go-message/mail"

	"crewmail/store"
)

// Confirmation tokens: what is confirmed, until when, for which member, signed.
const (
	actionUnsubscribe byte = 1
	actionReleasePost byte = 2 // the ID is a held post's, not a member's
	confirmValidity        = 7 * 24 * time.Hour
)

func (s *Service) confirmToken(list string, action byte, memberID uint64, expires time.Time) string {
	data := []byte{action}
	data = binary.BigEndian.AppendUint32(data, uint32(expires.Unix()/3600))
	data = binary.BigEndian.AppendUint64(data, memberID)
	return encodeToken(append(data, s.mac("confirm:"+list, data, 8)...))
}

func (s *Service) parseConfirmToken(list, token string, now time.Time) (action byte, memberID uint64, err error) {
	b, ok := decodeToken(token)
	if !ok || len(b) != 21 || !hmac.Equal(b[13:], s.mac("confirm:"+list, b[:13], 8)) {
		return 0, 0, errors.New("not a valid confirmation")
	}
	if expires := time.Unix(int64(binary.BigEndian.Uint32(b[1:5]))*3600, 0); now.After(expires) {
		return 0, 0, errors.New("the confirmation has expired")
	}
	return b[0], binary.BigEndian.Uint64(b[5:13]), nil
}

// acceptCommand answers mail to a list's command addresses. Commands never reach the list.
// RFC 3834 §2: automatic mail and mail from the null sender get no answer.
func (s *Service) acceptCommand(tx *store.Tx, l store.List, t Target, env Envelope, m *inbound, res *Result) error {
	if m.auto || env.From == "" {
		s.log.Info("automatic mail to a command address ignored", "list", l.Address, "from", m.from, "msgid", m.messageID)
		return nil
	}
	now := s.Now().UTC()
	data := s.noticeData(l)
	switch t.Kind {
	case KindHelp:
		return s.enqueueNotice(tx, l, m.from, "help", data, m.messageID, res)
	case KindUnsubscribe:
		mem, err := tx.Member(l.Address, m.from)
		if errors.Is(err, store.ErrNotFound) {
			s.log.Info("unsubscribe from a non-member ignored", "list", l.Address, "from", m.from)
			return nil
		} else if err != nil {
			return err
		}
		// The confirmation goes to the address on file, so nobody can take a member off by
		// forging their From.
		expires := now.Add(confirmValidity)
		data["Address"] = mem.Address
		data["Confirm"] = s.address(l.Address, "confirm-"+s.confirmToken(l.Address, actionUnsubscribe, mem.ID, expires))
		data["Expires"] = expires.Format("Monday 2 January 2006")
		return s.enqueueNotice(tx, l, mem.Address, "unsubscribe-confirm", data, m.messageID, res)
	case KindConfirm:
		action, id, err := s.parseConfirmToken(l.Address, t.Token, now)
		if err != nil {
			s.log.Info("confirmation refused", "list", l.Address, "from", m.from, "reason", err)
			return refuse(550, [3]int{5, 7, 1}, "%s: %v", s.address(l.Address, "confirm-…"), err)
		}
		if action == actionReleasePost {
			return s.releaseHeld(tx, l, id, res)
		}
		mem, err := tx.MemberByID(l.Address, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil // already done: confirming twice is harmless
		} else if err != nil {
			return err
		}
		if action == actionUnsubscribe {
			if err := tx.RemoveMember(l.Address, mem.Address); err != nil {
				return err
			}
			data["Address"] = mem.Address
			return s.enqueueNotice(tx, l, mem.Address, "unsubscribed", data, m.messageID, res)
		}
	}
	return nil
}

func (s *Service) noticeData(l store.List) map[string]any {
	return map[string]any{
		"ListName":    l.Name,
		"List":        l.Address,
		"Post":        l.Address,
		"Help":        s.address(l.Address, "help"),
		"Unsubscribe": s.address(l.Address, "unsubscribe"),
		"Policy":      l.Post,
		"Hostname":    s.cfg.Hostname,
	}
}

// enqueueNotice renders a template into a mail from the list to one person and puts it in the
// outbox. Notices are automatic replies (RFC 3834 §5: Auto-Submitted: auto-replied) sent with
// the null return path, so they never cause more automatic mail.
func (s *Service) enqueueNotice(tx *store.Tx, l store.List, to, name string, data map[string]any, inReplyTo string, res *Result) error {
	subject, body, err := s.tpl.Render(name, data)
	if err != nil {
		return err
	}
	// Each Set puts its field on top: set them in reverse of the order a reader expects.
	var h mail.Header
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("MIME-Version", "1.0")
	h.Set("X-Loop", l.Address)
	h.Set("List-Id", phrase(l.Name)+" <"+listID(l.Address)+">")
	h.Set("Auto-Submitted", "auto-replied")
	if inReplyTo != "" {
		h.SetMsgIDList("In-Reply-To", []string{inReplyTo})
	}
	h.SetMessageID(s.newMessageID())
	h.SetDate(s.Now())
	h.SetSubject(subject)
	if c, ok := data["Confirm"].(string); ok {
		h.SetAddressList("Reply-To", []*mail.Address{{Address: c}})
	}
	h.SetAddressList("To", []*mail.Address{{Address: to}})
	// A confirmation comes from its confirm address, so that a reply reaches it even from a
	// client that ignores Reply-To; anything else from the help address.
	from := s.address(l.Address, "help")
	if c, ok := data["Confirm"].(string); ok {
		from = c
	}
	h.SetAddressList("From", []*mail.Address{{Name: l.Name, Address: from}})
	var buf bytes.Buffer
	w, err := mail.CreateSingleInlineWriter(&buf, h)
	if err != nil {
		return fmt.Errorf("write notice: %w", err)
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return fmt.Errorf("write notice: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write notice: %w", err)
	}
	now := s.Now().UTC()
	if _, err := tx.Enqueue(store.Delivery{List: l.Address, Message: buf.Bytes(), To: to, Created: now}); err != nil {
		return err
	}
	res.Queued++
	return nil
}
