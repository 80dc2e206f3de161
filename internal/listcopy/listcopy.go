// Package listcopy owns what a list writes on the mail it sends: the one header block every
// post, notice and digest carries (RFC 2919 List-Id, the RFC 2369 List-* fields, the RFC 8058
// one-click fields, Precedence and X-Loop), and the list copy of a post: the archived message
// under that block, with the subject prefix, the DMARC-safe From rewrite and the author's
// address hidden when they apply.
package listcopy

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // a display name in any charset is read to be written again
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"crewmail/internal/mailaddr"
	"crewmail/internal/rawmsg"
	"crewmail/internal/safetext"
	"crewmail/internal/vocab"
	"crewmail/store"
)

// Block is a list's header block as one kind of mail carries it; a field left empty (false)
// is not written. Posts carry all of it; notices List-Id and X-Loop; digests List-Id,
// List-Post, List-Help and Precedence, and each member's copy its own unsubscribe fields on top.
type Block struct {
	Name    string // the list's name: the phrase of List-Id
	Address string // the list's address: List-Id is written when it is set
	Post    bool   // List-Post: the list's address
	Help    string // List-Help: the help address
	// Unsubscribe is the address that unsubscribes; OneClick the member's one-click link
	// (RFC 8058), which then comes first in List-Unsubscribe and adds List-Unsubscribe-Post.
	Unsubscribe, OneClick string
	Archive               string // List-Archive: where the archive is read
	Precedence            bool   // Precedence: list, which vacation programs still look at
	Loop                  bool   // X-Loop: the list's address, which stops the mail coming back through it
}

// Add writes the block on top of h, in the order a reader expects: List-Id first, X-Loop last.
func (b Block) Add(h *textproto.Header) {
	// Add puts each field on top: add them in reverse of the order they should appear in.
	if b.Loop {
		h.Add("X-Loop", b.Address)
	}
	if b.Precedence {
		h.Add("Precedence", "list")
	}
	if b.Archive != "" {
		h.Add("List-Archive", "<"+b.Archive+">")
	}
	if b.OneClick != "" {
		h.Add("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	if v := b.unsubscribe(); v != "" {
		h.Add("List-Unsubscribe", v)
	}
	if b.Help != "" {
		h.Add("List-Help", "<mailto:"+b.Help+">")
	}
	if b.Post {
		h.Add("List-Post", "<mailto:"+b.Address+">")
	}
	if b.Address != "" {
		h.Add("List-Id", ListID(b.Name, b.Address))
	}
}

// unsubscribe is the value of List-Unsubscribe: the one-click link first, which RFC 8058 §3
// has mail programs use, and the mailto address for the others (RFC 2369 §3.2).
func (b Block) unsubscribe() string {
	var links []string
	if b.OneClick != "" {
		links = append(links, "<"+b.OneClick+">")
	}
	if b.Unsubscribe != "" {
		links = append(links, "<mailto:"+b.Unsubscribe+">")
	}
	return strings.Join(links, ", ")
}

// OnTop returns msg with the block written on top of its header.
func (b Block) OnTop(msg []byte) ([]byte, error) {
	var h textproto.Header
	b.Add(&h)
	var buf bytes.Buffer
	buf.Grow(len(msg) + 512)
	if err := textproto.WriteHeader(&buf, h); err != nil {
		return nil, err
	}
	// WriteHeader ends the block with the empty line; the message brings its own.
	buf.Truncate(buf.Len() - 2)
	buf.Write(msg)
	return buf.Bytes(), nil
}

// ListID is the value of a list's List-Id field (RFC 2919 §3): its name as a phrase, then its
// identifier in angle brackets.
func ListID(name, list string) string {
	return phrase(name) + " <" + ID(list) + ">"
}

// ID is the RFC 2919 list identifier: the list address with "@" turned into ".".
func ID(list string) string {
	local, domain, _ := mailaddr.Split(list)
	return local + "." + domain
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

// Post returns the list copy of post p of list l, archived as raw: the archived message with
// the block on top and nothing else changed, so the author's DKIM signature still verifies at
// every member (docs/design.md, "No modification vs. subject prefix and footer"). A subject
// prefix, when the list has one, is the one exception, and the From rewrite where the author's
// DMARC policy then demands it. On a list that hides addresses the copy always comes From the
// list, without the author's address, and privateReply (the post's crew+p-TOKEN@ address) is
// its Reply-To: replying answers the author alone, through the list.
func Post(l store.List, p store.Post, raw []byte, b Block, privateReply string) ([]byte, error) {
	body, err := Body(l, p, raw, privateReply)
	if err != nil {
		return nil, err
	}
	return b.OnTop(body)
}

// Body is the part of the list copy of post p that every member gets the same: Post without
// the block. A list composes it once per post and puts each member's block on top (OnTop).
func Body(l store.List, p store.Post, raw []byte, privateReply string) ([]byte, error) {
	var err error
	if l.SubjectPrefix != "" {
		if raw, err = withSubjectPrefix(raw, l.SubjectPrefix); err != nil {
			return nil, err
		}
	}
	if l.HideAddresses {
		if raw, err = hideAuthor(raw, l, p.From, privateReply); err != nil {
			return nil, err
		}
	} else if needsFromRewrite(l, p) {
		if raw, err = fromTheList(raw, l); err != nil {
			return nil, err
		}
	}
	return raw, nil
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
	if l.AuthorIn == vocab.AuthorInCc {
		cc, _ := h.AddressList("Cc")
		h.SetAddressList("Cc", append(cc, author))
	} else if !h.Has("Reply-To") {
		h.SetAddressList("Reply-To", []*mail.Address{author})
	}
	h.Set("X-Original-From", original)
	h.SetAddressList("From", []*mail.Address{Via(l, author)})
	var buf bytes.Buffer
	if err := textproto.WriteHeader(&buf, h.Header.Header); err != nil {
		return nil, err
	}
	if _, err := io.Copy(&buf, br); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Via is the From of mail the list sends on someone's behalf: '"Alice via Garden crew"
// <crew@example.org>', named by their display name, or the local part of their address when
// they have none (or one that looks like an address).
func Via(l store.List, person *mail.Address) *mail.Address {
	name := safetext.Author(person.Name)
	if name == "" {
		name, _, _ = mailaddr.Split(person.Address)
	}
	listName := l.Name
	if listName == "" {
		listName, _, _ = mailaddr.Split(l.Address)
	}
	return &mail.Address{Name: name + " via " + listName, Address: l.Address}
}

// hideAuthor sends the copy From the list on a list that hides addresses: every field that
// names the author's address (From, Sender, Reply-To, the Return-Path and
// Authentication-Results of her mail, an Exim "envelope-from" in a Received field, her
// DKIM-Signature's i=) is removed, but the Message-IDs that thread it; privateReply, when set,
// is the Reply-To. Her signature no longer verifies, and need not: the list signs the copy
// with its own domain, which From then names (DMARC-aligned).
func hideAuthor(raw []byte, l store.List, author, privateReply string) ([]byte, error) {
	// Blank lines before the header (some mail software writes them) are neither a field nor
	// its end: skipped, as the archive's readers skip them (rawmsg).
	br := bufio.NewReader(bytes.NewReader(rawmsg.SkipBlankLines(raw)))
	th, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, err
	}
	h := mail.Header{Header: message.Header{Header: th}}
	from := &mail.Address{Address: author}
	if as, err := h.AddressList("From"); err == nil && len(as) == 1 {
		from = as[0]
	}
	names := []string{strings.ToLower(author), strings.ToLower(from.Address)}
	for f := h.Fields(); f.Next(); { // h, not th: Del shortens the list h writes
		switch strings.ToLower(f.Key()) {
		case "message-id", "in-reply-to", "references":
			continue
		}
		v := strings.ToLower(f.Value())
		if dec, err := new(mime.WordDecoder).DecodeHeader(v); err == nil {
			v += " " + strings.ToLower(dec)
		}
		for _, n := range names {
			if n != "" && strings.Contains(v, n) {
				f.Del()
				break
			}
		}
	}
	h.Del("X-Original-From")
	if privateReply != "" {
		h.SetAddressList("Reply-To", []*mail.Address{{Address: privateReply}})
	}
	h.SetAddressList("From", []*mail.Address{Via(l, from)})
	var buf bytes.Buffer
	if err := textproto.WriteHeader(&buf, h.Header.Header); err != nil {
		return nil, err
	}
	if _, err := io.Copy(&buf, br); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// SignInMark stands in a digest, which many members share (one stored copy), where each
// member's own web sign-in link goes: lists.Compose puts the link of the member a copy is
// for in its place at delivery, as it puts her own To and List-Unsubscribe on top.
const SignInMark = "crewmail-member-sign-in-link"
