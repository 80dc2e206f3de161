package lists

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"crewmail/internal/mailaddr"
	"crewmail/internal/vocab"
	"crewmail/store"
)

// Compose returns the message an outbox entry carries. For a post that is the list copy: the
// archived message with the list's headers added on top and nothing else changed, so the
// author's DKIM signature still verifies at every member (docs/design.md, "No modification vs.
// subject prefix and footer"). A subject prefix, when the list has one, is the one exception.
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
		var h textproto.Header
		if s.oneClickURL(d.List, d.Member) != "" {
			h.Add("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
		}
		h.Add("List-Unsubscribe", s.unsubscribeHeader(d.List, d.Member))
		var buf bytes.Buffer
		buf.Grow(len(msg) + 256)
		if err := textproto.WriteHeader(&buf, h); err != nil {
			return nil, err
		}
		buf.Truncate(buf.Len() - 2)
		buf.Write(msg)
		return buf.Bytes(), nil
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
	if l.SubjectPrefix != "" {
		if raw, err = withSubjectPrefix(raw, l.SubjectPrefix); err != nil {
			return nil, fmt.Errorf("compose post %d of %s: %w", d.Seq, d.List, err)
		}
	}
	if needsFromRewrite(l, p) {
		if raw, err = fromTheList(raw, l); err != nil {
			return nil, fmt.Errorf("compose post %d of %s: %w", d.Seq, d.List, err)
		}
	}
	var buf bytes.Buffer
	buf.Grow(len(raw) + 512)
	if err := textproto.WriteHeader(&buf, s.listHeader(l, d.Member)); err != nil {
		return nil, err
	}
	// WriteHeader ends the block with the empty line; the archived message brings its own.
	buf.Truncate(buf.Len() - 2)
	buf.Write(raw)
	return buf.Bytes(), nil
}

// listHeader is what a list adds on top of each post: RFC 2919 List-Id, the RFC 2369 List-*
// fields, Precedence and the loop marker that stops the post coming back through the list.
// A member's copy carries their own one-click unsubscribe link (RFC 8058), which delivery signs
// with DKIM as §4 requires.
func (s *Service) listHeader(l store.List, member uint64) textproto.Header {
	var h textproto.Header
	// Add puts each field on top: add them in reverse of the order they should appear in.
	h.Add("X-Loop", l.Address)
	h.Add("Precedence", "list")
	if l.ArchiveURL != "" {
		h.Add("List-Archive", "<"+l.ArchiveURL+">")
	}
	if s.oneClickURL(l.Address, member) != "" {
		h.Add("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	h.Add("List-Unsubscribe", s.unsubscribeHeader(l.Address, member))
	h.Add("List-Help", "<mailto:"+s.address(l.Address, "help")+">")
	h.Add("List-Post", "<mailto:"+l.Address+">")
	h.Add("List-Id", phrase(l.Name)+" <"+listID(l.Address)+">")
	return h
}

// phrase writes a display name as an RFC 5322 phrase, RFC 2047-encoded when it is not ASCII.
func phrase(name string) string {
	for _, r := range name {
		if r >= 0x80 {
			return mime.QEncoding.Encode("utf-8", name)
		}
	}
	if strings.ContainsAny(name, "()<>[]:;@\\,.\"") {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
	}
	return name
}

// withSubjectPrefix puts prefix in front of the Subject unless it is already there.
func withSubjectPrefix(raw []byte, prefix string) ([]byte, error) {
	br := bufio.NewReader(bytes.NewReader(raw))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, err
	}
	subject := h.Get("Subject")
	if dec, err := new(mime.WordDecoder).DecodeHeader(subject); err == nil {
		subject = dec
	}
	if strings.Contains(subject, strings.TrimSpace(prefix)) {
		return raw, nil
	}
	h.Set("Subject", mime.QEncoding.Encode("utf-8", strings.TrimRight(prefix, " ")+" "+subject))
	var buf bytes.Buffer
	if err := textproto.WriteHeader(&buf, h); err != nil {
		return nil, err
	}
	if _, err := io.Copy(&buf, br); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// needsFromRewrite says whether the list copy must be sent From the list. A receiver checks
// DMARC against the From domain: when the author's domain asks receivers to quarantine or
// reject failing mail, and the copy carries no valid signature of that domain (the author did
// not sign, or the list changed what was signed), the copy would fail DMARC and be lost
// (RFC 7960 §4.1.3 describes the problem; rewriting From is the usual mitigation).
func needsFromRewrite(l store.List, p store.Post) bool {
	if p.DMARCPolicy != "quarantine" && p.DMARCPolicy != "reject" {
		return false
	}
	return !p.DKIMAligned || l.SubjectPrefix != ""
}

// fromTheList sends the copy From the list, as '"Alice via Garden crew" <crew@example.org>',
// with the author in Reply-To (or Cc, as the list says) and X-Original-From, so every member
// still sees who wrote and replies reach the author.
func fromTheList(raw []byte, l store.List) ([]byte, error) {
	br := bufio.NewReader(bytes.NewReader(raw))
	th, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, err
	}
	h := mail.Header{Header: message.Header{Header: th}} // from here on, only h
	original := h.Get("From")
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 {
		return raw, nil // nothing readable to rewrite; accepted posts have one From
	}
	author := from[0]
	name := author.Name
	if name == "" {
		name, _, _ = mailaddr.Split(author.Address)
	}
	listName := l.Name
	if listName == "" {
		listName, _ = splitAddress(l.Address)
	}
	if l.AuthorIn == vocab.AuthorInCc {
		cc, _ := h.AddressList("Cc")
		h.SetAddressList("Cc", append(cc, author))
	} else if !h.Has("Reply-To") {
		h.SetAddressList("Reply-To", []*mail.Address{author})
	}
	h.Set("X-Original-From", original)
	h.SetAddressList("From", []*mail.Address{{Name: name + " via " + listName, Address: l.Address}})
	var buf bytes.Buffer
	if err := textproto.WriteHeader(&buf, h.Header.Header); err != nil {
		return nil, err
	}
	if _, err := io.Copy(&buf, br); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
