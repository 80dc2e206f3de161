package lists

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"crewmail/internal/listcopy"
	"crewmail/internal/rawmsg"
	"crewmail/store"
	"crewmail/templates"
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
		if s.cfg.SignIn != nil {
			if msg, err = signIn(msg, s.cfg.SignIn(d.To, s.Now())); err != nil {
				return nil, fmt.Errorf("compose digest for %s: %w", d.To, err)
			}
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
	pc, err := s.postCopy(d.List, d.Seq)
	if err != nil {
		return nil, fmt.Errorf("compose post %d of %s: %w", d.Seq, d.List, err)
	}
	return s.postBlock(pc.list, d.Member).OnTop(pc.body)
}

// postCopy is the part of post seq's list copy that every member gets the same
// (listcopy.Body), composed once for all of them: a post goes to every member within moments,
// so the copies of the latest posts are kept a short while (postCopies), each under the
// list's incarnation, so that a list made again under the same address never gets the copy
// of an old one's post.
func (s *Service) postCopy(list string, seq uint64) (*postCopy, error) {
	key := copyKey{list: list, inc: s.st.Incarnation(list), seq: seq}
	if pc := s.copies.get(key); pc != nil {
		return pc, nil
	}
	var l store.List
	var p store.Post
	var raw []byte
	err := s.st.View(func(tx store.Tx) error {
		var err error
		if l, err = tx.List(list); err != nil {
			return err
		}
		p, raw, err = tx.Post(list, seq)
		return err
	})
	if err != nil {
		return nil, err
	}
	var private string
	if l.HideAddresses {
		private = s.PrivateReplyAddress(l.Address, p.Seq)
	}
	body, err := listcopy.Body(l, p, raw, private)
	if err != nil {
		return nil, err
	}
	pc := &postCopy{list: l, body: body, made: time.Now()}
	s.copies.put(key, pc)
	return pc, nil
}

// The list copies kept: as many posts as are delivered at once, for as long as it takes (a
// change of the list's settings reaches every post composed after it).
const (
	postCopies   = 64
	postCopyKept = time.Minute
)

type copyKey struct {
	list     string
	inc, seq uint64
}

type postCopy struct {
	list store.List // the settings it was composed under, for each member's block
	body []byte     // never changed once made: each member's copy is a new slice
	made time.Time
}

// copies are the list copies kept (Service.postCopy); the zero value is ready.
type copies struct {
	mu    sync.Mutex
	m     map[copyKey]*postCopy
	order []copyKey // oldest first
}

func (c *copies) get(k copyKey) *postCopy {
	c.mu.Lock()
	defer c.mu.Unlock()
	pc := c.m[k]
	if pc == nil || time.Since(pc.made) > postCopyKept {
		return nil
	}
	return pc
}

func (c *copies) put(k copyKey, pc *postCopy) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[copyKey]*postCopy{}
	}
	if _, ok := c.m[k]; !ok {
		if len(c.order) >= postCopies {
			delete(c.m, c.order[0])
			c.order = c.order[1:]
		}
		c.order = append(c.order, k)
	}
	c.m[k] = pc
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

// signIn puts link, a member's own web sign-in link, where the digest msg has
// listcopy.SignInMark: in its text part (format=flowed, delsp=yes) the line that holds the
// mark is flowed again, so that no line is longer than 78 characters (RFC 3676), and in its
// HTML part the mark is replaced, escaped. msg is the server's own mail (UTF-8, written by
// digest.Renderer), so its parts are decoded and encoded again; the header stays as it is.
// A message without the mark is returned unchanged.
func signIn(msg []byte, link string) ([]byte, error) {
	e, err := message.Read(bytes.NewReader(msg))
	if err != nil {
		return nil, err
	}
	mr := e.MultipartReader()
	if mr == nil {
		return msg, nil
	}
	var buf bytes.Buffer
	w, err := message.CreateWriter(&buf, e.Header)
	if err != nil {
		return nil, err
	}
	found := false
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(p.Body)
		if err != nil {
			return nil, err
		}
		text := string(body)
		if strings.Contains(text, listcopy.SignInMark) {
			found = true
			if t, _, _ := p.Header.ContentType(); t == "text/html" {
				text = strings.ReplaceAll(text, listcopy.SignInMark, html.EscapeString(link))
			} else {
				text = reflow(text, link)
			}
		}
		pw, err := w.CreatePart(p.Header)
		if err != nil {
			return nil, err
		}
		if _, err := io.WriteString(pw, text); err != nil {
			return nil, err
		}
		if err := pw.Close(); err != nil {
			return nil, err
		}
	}
	if !found {
		return msg, nil
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// reflow replaces the mark in the flowed text with link, and flows each line that held it
// again (templates.FlowDelSp): a link is longer than a line.
func reflow(text, link string) string {
	lines := strings.SplitAfter(text, "\n")
	for i, l := range lines {
		if !strings.Contains(l, listcopy.SignInMark) {
			continue
		}
		end := l[len(strings.TrimRight(l, "\r\n")):]
		sep := end
		if sep == "" { // the last line, without its end
			sep = "\n"
		}
		flowed := templates.FlowDelSp(strings.ReplaceAll(strings.TrimRight(l, "\r\n"), listcopy.SignInMark, link))
		lines[i] = strings.ReplaceAll(strings.TrimSuffix(flowed, "\n"), "\n", sep) + end
	}
	return strings.Join(lines, "")
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
