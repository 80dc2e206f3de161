package imapd

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"crewmail/store"
)

func listNames(t *testing.T, c *imapclient.Client) []string {
	t.Helper()
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatalf("LIST: %v", err)
	}
	var names []string
	for _, b := range boxes {
		names = append(names, b.Mailbox)
	}
	return names
}

func TestListShowsExactlyTheMembersLists(t *testing.T) {
	e := newEnv(t)
	for addr, want := range map[string][]string{alice: {crewBox}, bob: {otherBox}, carol: {crewBox, otherBox}} {
		c := e.login(t, addr)
		if got := listNames(t, c); !slices.Equal(got, want) {
			t.Errorf("LIST for %s: %q, want %q", addr, got, want)
		}
		if err := c.Logout().Wait(); err != nil {
			t.Errorf("LOGOUT: %v", err)
		}
	}
	// The address is matched without regard to case; the store keeps it lowercase.
	c := e.dial(t, nil)
	if err := c.Login("Alice@Example.TEST", passwords[alice]).Wait(); err != nil {
		t.Fatalf("login with a capitalised address: %v", err)
	}
	if got := listNames(t, c); !slices.Equal(got, []string{crewBox}) {
		t.Errorf("LIST: %q", got)
	}
	// The empty pattern asks for the delimiter only.
	boxes, err := c.List("", "", nil).Collect()
	if err != nil || len(boxes) != 1 || boxes[0].Mailbox != "" || boxes[0].Delim != '/' {
		t.Errorf(`LIST "" "": %+v, %v`, boxes, err)
	}
}

func TestFetchEverything(t *testing.T) {
	e := newEnv(t)
	c := e.login(t, alice)
	sel, err := c.Select(crew, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 6 || sel.UIDValidity != uint32(created.Unix()) || sel.UIDNext != 7 {
		t.Errorf("SELECT: %d messages, UIDVALIDITY %d, UIDNEXT %d", sel.NumMessages, sel.UIDValidity, sel.UIDNext)
	}
	if !slices.Equal(sel.PermanentFlags, []imap.Flag{imap.FlagSeen, imap.FlagFlagged}) {
		t.Errorf("PERMANENTFLAGS %v", sel.PermanentFlags)
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(allSeq(), &imap.FetchOptions{
		UID: true, Flags: true, Envelope: true, RFC822Size: true, InternalDate: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection:   []*imap.FetchItemBodySection{whole},
	}).Collect()
	if err != nil {
		t.Fatalf("FETCH 1:*: %v", err)
	}
	if len(msgs) != len(crewPosts) {
		t.Fatalf("FETCH 1:* gave %d messages, want %d", len(msgs), len(crewPosts))
	}
	for i, m := range msgs {
		raw := crewPosts[i]
		if got := m.FindBodySection(whole); !bytes.Equal(got, raw) {
			t.Errorf("message %d: BODY[] differs from the archive:\n%q\nwant\n%q", i+1, got, raw)
		}
		if m.SeqNum != uint32(i+1) || m.UID != imap.UID(i+1) {
			t.Errorf("message %d: seq %d UID %d", i+1, m.SeqNum, m.UID)
		}
		if m.RFC822Size != int64(len(raw)) {
			t.Errorf("message %d: RFC822.SIZE %d, want %d", i+1, m.RFC822Size, len(raw))
		}
		if want := time.Date(2026, 3, 1+i, 10, 30, 0, 0, time.UTC); !m.InternalDate.Equal(want) {
			t.Errorf("message %d: INTERNALDATE %v, want %v", i+1, m.InternalDate, want)
		}
		if len(m.Flags) != 0 {
			t.Errorf("message %d: flags %v after BODY.PEEK[]", i+1, m.Flags)
		}
		if m.Envelope == nil || m.Envelope.MessageID != messageID(raw) {
			t.Errorf("message %d: envelope %+v", i+1, m.Envelope)
		}
		if m.BodyStructure == nil {
			t.Errorf("message %d: no BODYSTRUCTURE", i+1)
		}
	}

	env := msgs[0].Envelope
	if env.Subject != "Meeting on Friday" || len(env.From) != 1 || env.From[0].Name != "Alice Example" ||
		env.From[0].Addr() != alice || len(env.To) != 1 || env.To[0].Addr() != crew ||
		!env.Date.Equal(time.Date(2026, 3, 1, 10, 29, 0, 0, time.UTC)) {
		t.Errorf("envelope 1: %+v", env)
	}
	env = msgs[1].Envelope
	if env.Subject != "Grüße aus Köln" || env.From[0].Name != "Jürgen Müller" || !slices.Equal(env.InReplyTo, []string{"meeting-1@example.test"}) {
		t.Errorf("envelope 2 (encoded words, In-Reply-To): %+v", env)
	}
	if env := msgs[4].Envelope; len(env.To) != 3 || !strings.Contains(env.Subject, "regatta") {
		t.Errorf("envelope 5 (folded fields): %+v", env)
	}

	if bs, ok := msgs[0].BodyStructure.(*imap.BodyStructureSinglePart); !ok || bs.MediaType() != "text/plain" || bs.Params["charset"] != "utf-8" {
		t.Errorf("bodystructure 1: %#v", msgs[0].BodyStructure)
	}
	if bs, ok := msgs[1].BodyStructure.(*imap.BodyStructureMultiPart); !ok || bs.Subtype != "alternative" || len(bs.Children) != 2 {
		t.Errorf("bodystructure 2: %#v", msgs[1].BodyStructure)
	}
	if bs, ok := msgs[2].BodyStructure.(*imap.BodyStructureMultiPart); !ok || len(bs.Children) != 2 {
		t.Errorf("bodystructure 3: %#v", msgs[2].BodyStructure)
	} else if pdf, ok := bs.Children[1].(*imap.BodyStructureSinglePart); !ok || pdf.MediaType() != "application/pdf" ||
		pdf.Disposition() == nil || pdf.Disposition().Value != "attachment" || pdf.Filename() != "charts.pdf" {
		t.Errorf("bodystructure 3, attachment: %#v", bs.Children[1])
	}
	if bs, ok := msgs[5].BodyStructure.(*imap.BodyStructureMultiPart); !ok || len(bs.Children) != 2 {
		t.Errorf("bodystructure 6: %#v", msgs[5].BodyStructure)
	} else if fwd, ok := bs.Children[1].(*imap.BodyStructureSinglePart); !ok || fwd.MessageRFC822 == nil || fwd.MessageRFC822.Envelope.Subject != "Opening hours" {
		t.Errorf("bodystructure 6, forwarded message: %#v", bs.Children[1])
	}

	// Sections.
	part1 := &imap.FetchItemBodySection{Part: []int{1}, Peek: true}
	subject := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Peek: true}
	text := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText, Peek: true}
	head := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
	some := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 6, Size: 5}}
	bin := &imap.FetchItemBinarySection{Part: []int{1}, Peek: true}
	msgs, err = c.Fetch(imap.SeqSetNum(2), &imap.FetchOptions{
		BodySection:   []*imap.FetchItemBodySection{part1, subject, text, head, some},
		BinarySection: []*imap.FetchItemBinarySection{bin},
	}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH 2 sections: %v", err)
	}
	m, raw := msgs[0], crewPosts[1]
	if got := string(m.FindBodySection(part1)); got != "Freitag passt. Ich bringe K=C3=A4sekuchen mit." {
		t.Errorf("BODY[1]: %q", got)
	}
	if got := string(m.FindBinarySection(bin)); got != "Freitag passt. Ich bringe Käsekuchen mit." {
		t.Errorf("BINARY[1]: %q", got)
	}
	if got := string(m.FindBodySection(subject)); got != "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n\r\n" {
		t.Errorf("BODY[HEADER.FIELDS (Subject)]: %q", got)
	}
	i := bytes.Index(raw, []byte("\r\n\r\n")) + 4
	if got := m.FindBodySection(head); !bytes.Equal(got, raw[:i]) {
		t.Errorf("BODY[HEADER]: %q", got)
	}
	if got := m.FindBodySection(text); !bytes.Equal(got, raw[i:]) {
		t.Errorf("BODY[TEXT]: %q", got)
	}
	if got := string(m.FindBodySection(some)); got != string(raw[6:11]) {
		t.Errorf("BODY[]<6.5>: %q", got)
	}

	// UID FETCH of a range past the end gives the last message (RFC 9051 §6.4.8). imapclient
	// drops that answer as not asked for, so by hand.
	rc := e.raw(t)
	rc.cmd("LOGIN %s %s", alice, passwords[alice])
	rc.cmd("EXAMINE %s", crew)
	if lines, st := rc.cmd("UID FETCH 50:* (FLAGS)"); !strings.HasPrefix(st, "OK") || !slices.Equal(lines, []string{"* 6 FETCH (UID 6 FLAGS ())"}) {
		t.Errorf("UID FETCH 50:*: %q %s", lines, st)
	}
	if lines, st := rc.cmd("FETCH 4:2 (UID)"); !strings.HasPrefix(st, "OK") || len(lines) != 3 {
		t.Errorf("FETCH 4:2: %q %s", lines, st)
	}
}

func uidSearch(t *testing.T, c *imapclient.Client, what string, criteria *imap.SearchCriteria) []imap.UID {
	t.Helper()
	data, err := c.UIDSearch(criteria, nil).Wait()
	if err != nil {
		t.Fatalf("UID SEARCH %s: %v", what, err)
	}
	return data.AllUIDs()
}

func day(d int) time.Time { return time.Date(2026, 3, d, 0, 0, 0, 0, time.UTC) }

func TestSearch(t *testing.T) {
	e := newEnv(t)
	c := e.login(t, alice)
	if _, err := c.Select(crew, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var larger []imap.UID
	for i, raw := range crewPosts {
		if len(raw) > 600 {
			larger = append(larger, imap.UID(i+1))
		}
	}
	hdr := func(k, v string) []imap.SearchCriteriaHeaderField {
		return []imap.SearchCriteriaHeaderField{{Key: k, Value: v}}
	}
	for _, tc := range []struct {
		what     string
		criteria imap.SearchCriteria
		want     []imap.UID
	}{
		{"ALL", imap.SearchCriteria{}, []imap.UID{1, 2, 3, 4, 5, 6}},
		{"SUBJECT charts", imap.SearchCriteria{Header: hdr("Subject", "charts")}, []imap.UID{3, 4}},
		{"SUBJECT in an encoded word", imap.SearchCriteria{Header: hdr("Subject", "grüße")}, []imap.UID{2}},
		{"FROM carol", imap.SearchCriteria{Header: hdr("From", "carol@example.test")}, []imap.UID{3, 6}},
		{"HEADER In-Reply-To", imap.SearchCriteria{Header: hdr("In-Reply-To", "charts-3")}, []imap.UID{4}},
		{"HEADER present", imap.SearchCriteria{Header: hdr("Cc", "")}, []imap.UID{3}},
		{"TEXT in a body", imap.SearchCriteria{Text: []string{"PINEAPPLE"}}, []imap.UID{4}},
		{"TEXT quoted-printable", imap.SearchCriteria{Text: []string{"käsekuchen"}}, []imap.UID{2}},
		{"TEXT latin-1", imap.SearchCriteria{Text: []string{"18°C"}}, []imap.UID{5}},
		{"TEXT in a header", imap.SearchCriteria{Text: []string{"regatta"}}, []imap.UID{5}},
		{"BODY not headers", imap.SearchCriteria{Body: []string{"regatta"}}, nil},
		{"BODY in a forwarded message", imap.SearchCriteria{Body: []string{"weekends"}}, []imap.UID{6}},
		{"SINCE", imap.SearchCriteria{Since: day(4)}, []imap.UID{4, 5, 6}},
		{"BEFORE", imap.SearchCriteria{Before: day(3)}, []imap.UID{1, 2}},
		{"ON", imap.SearchCriteria{Since: day(5), Before: day(6)}, []imap.UID{5}},
		{"SENTBEFORE", imap.SearchCriteria{SentBefore: day(2)}, []imap.UID{1}},
		{"UID range", imap.SearchCriteria{UID: []imap.UIDSet{{{Start: 2, Stop: 4}}}}, []imap.UID{2, 3, 4}},
		{"UID n:*", imap.SearchCriteria{UID: []imap.UIDSet{{{Start: 5, Stop: 0}}}}, []imap.UID{5, 6}},
		{"UID past the end:*", imap.SearchCriteria{UID: []imap.UIDSet{{{Start: 90, Stop: 0}}}}, []imap.UID{6}},
		{"sequence numbers", imap.SearchCriteria{SeqNum: []imap.SeqSet{{{Start: 2, Stop: 3}}}}, []imap.UID{2, 3}},
		{"OR", imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Header: hdr("From", "alice")}, {Header: hdr("From", "dave")}}}}, []imap.UID{1, 4, 5}},
		{"NOT", imap.SearchCriteria{Not: []imap.SearchCriteria{{Header: hdr("Subject", "charts")}}, Since: day(3)}, []imap.UID{5, 6}},
		{"LARGER", imap.SearchCriteria{Larger: 600}, larger},
		{"nothing", imap.SearchCriteria{Text: []string{"no such words anywhere"}}, nil},
		{"DELETED (never)", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagDeleted}}, nil},
	} {
		if got := uidSearch(t, c, tc.what, &tc.criteria); !slices.Equal(got, tc.want) {
			t.Errorf("UID SEARCH %s: %v, want %v", tc.what, got, tc.want)
		}
	}

	// Flags.
	if _, err := c.Store(imap.UIDSetNum(1, 4), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store(imap.UIDSetNum(4, 5), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	for what, tc := range map[string]struct {
		criteria imap.SearchCriteria
		want     []imap.UID
	}{
		"SEEN":           {imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, []imap.UID{1, 4}},
		"UNSEEN":         {imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, []imap.UID{2, 3, 5, 6}},
		"FLAGGED":        {imap.SearchCriteria{Flag: []imap.Flag{imap.FlagFlagged}}, []imap.UID{4, 5}},
		"FLAGGED UNSEEN": {imap.SearchCriteria{Flag: []imap.Flag{imap.FlagFlagged}, NotFlag: []imap.Flag{imap.FlagSeen}}, []imap.UID{5}},
	} {
		if got := uidSearch(t, c, what, &tc.criteria); !slices.Equal(got, tc.want) {
			t.Errorf("UID SEARCH %s: %v, want %v", what, got, tc.want)
		}
	}

	// Plain SEARCH answers with sequence numbers.
	data, err := c.Search(&imap.SearchCriteria{Text: []string{"pineapple"}}, nil).Wait()
	if err != nil || !slices.Equal(data.AllSeqNums(), []uint32{4}) {
		t.Errorf("SEARCH TEXT pineapple: %v %v", data, err)
	}
}

func flagsOf(t *testing.T, c *imapclient.Client) [][]imap.Flag {
	t.Helper()
	msgs, err := c.Fetch(allSeq(), &imap.FetchOptions{Flags: true}).Collect()
	if err != nil {
		t.Fatalf("FETCH FLAGS: %v", err)
	}
	var out [][]imap.Flag
	for _, m := range msgs {
		f := slices.Clone(m.Flags)
		slices.Sort(f)
		out = append(out, f)
	}
	return out
}

func TestFlagsAreKeptPerMemberAcrossSessions(t *testing.T) {
	e := newEnv(t)
	c := e.login(t, alice)
	if _, err := c.Select(crew, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	store := func(set imap.NumSet, op imap.StoreFlagsOp, silent bool, flags ...imap.Flag) []*imapclient.FetchMessageBuffer {
		t.Helper()
		msgs, err := c.Store(set, &imap.StoreFlags{Op: op, Silent: silent, Flags: flags}, nil).Collect()
		if err != nil {
			t.Fatalf("STORE %v %v: %v", op, flags, err)
		}
		return msgs
	}
	got := store(imap.SeqSetNum(1), imap.StoreFlagsAdd, false, imap.FlagSeen, imap.FlagFlagged)
	if len(got) != 1 || len(got[0].Flags) != 2 {
		t.Errorf("STORE 1 +FLAGS (\\Seen \\Flagged): %+v", got)
	}
	if got := store(imap.SeqSetNum(2), imap.StoreFlagsAdd, true, imap.FlagSeen); len(got) != 0 {
		t.Errorf("STORE +FLAGS.SILENT answered %+v", got)
	}
	store(imap.UIDSetNum(3), imap.StoreFlagsSet, false, imap.FlagFlagged)
	store(imap.SeqSetNum(1), imap.StoreFlagsDel, false, imap.FlagFlagged)
	// A non-PEEK BODY[] sets \Seen, and says so.
	whole := &imap.FetchItemBodySection{}
	msgs, err := c.Fetch(imap.SeqSetNum(5), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{whole}}).Collect()
	if err != nil || len(msgs) != 1 || !slices.Equal(msgs[0].Flags, []imap.Flag{imap.FlagSeen}) || !bytes.Equal(msgs[0].FindBodySection(whole), crewPosts[4]) {
		t.Errorf("FETCH 5 BODY[]: %+v %v", msgs, err)
	}
	seen, flagged := imap.FlagSeen, imap.FlagFlagged
	want := [][]imap.Flag{{seen}, {seen}, {flagged}, nil, {seen}, nil}
	if got := flagsOf(t, c); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("flags: %v, want %v", got, want)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}

	// Another session, later: the same flags.
	c = e.login(t, alice)
	st, err := c.Status(crew, &imap.StatusOptions{NumMessages: true, NumUnseen: true, UIDNext: true, UIDValidity: true}).Wait()
	if err != nil || *st.NumMessages != 6 || *st.NumUnseen != 3 || st.UIDNext != 7 || st.UIDValidity != uint32(created.Unix()) {
		t.Errorf("STATUS: %+v %v", st, err)
	}
	if _, err := c.Select(crew, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if got := flagsOf(t, c); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("flags in a new session: %v, want %v", got, want)
	}
	// FLAGS () clears them.
	store(imap.SeqSetNum(3), imap.StoreFlagsSet, true)

	// Carol's flags are her own.
	cc := e.login(t, carol)
	if _, err := cc.Select(crew, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if got := flagsOf(t, cc); !slices.EqualFunc(got, make([][]imap.Flag, 6), slices.Equal) {
		t.Errorf("carol's flags: %v", got)
	}

	// EXAMINE: BODY[] does not set \Seen, and STORE is refused.
	if _, err := cc.Select(crew, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{whole}}).Collect(); err != nil {
		t.Fatal(err)
	}
	_, err = cc.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{seen}}, nil).Collect()
	wantNo(t, "STORE after EXAMINE", err, "")
	if got := flagsOf(t, cc); !slices.EqualFunc(got, make([][]imap.Flag, 6), slices.Equal) {
		t.Errorf("carol's flags after EXAMINE and BODY[]: %v", got)
	}
}

func TestArchiveIsReadOnly(t *testing.T) {
	e := newEnv(t)
	c := e.login(t, carol)
	if _, err := c.Select(crew, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []imap.Flag{imap.FlagDeleted, imap.FlagAnswered, imap.FlagDraft, "$Label1", "\\Recent"} {
		_, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen, f}}, nil).Collect()
		wantNo(t, "STORE +FLAGS "+string(f), err, imap.ResponseCodeCannot)
	}
	if got := flagsOf(t, c); got[0] != nil {
		t.Errorf("a refused STORE changed flags: %v", got[0])
	}
	msg := crlf("From: carol@example.test\nSubject: sneaky\n\nhi\n")
	ap := c.Append(crew, int64(len(msg)), nil)
	ap.Write(msg)
	ap.Close()
	_, err := ap.Wait()
	wantNo(t, "APPEND", err, imap.ResponseCodeCannot)
	_, err = c.Copy(imap.SeqSetNum(1), other).Wait()
	wantNo(t, "COPY", err, imap.ResponseCodeCannot)
	wantNo(t, "EXPUNGE", c.Expunge().Close(), imap.ResponseCodeCannot)
	wantNo(t, "UID EXPUNGE", c.UIDExpunge(imap.UIDSetNum(1)).Close(), imap.ResponseCodeCannot)
	wantNo(t, "CREATE", c.Create("crew@lists.example.test/sub", nil).Wait(), imap.ResponseCodeCannot)
	wantNo(t, "DELETE", c.Delete(crew).Wait(), imap.ResponseCodeCannot)
	wantNo(t, "RENAME", c.Rename(crew, "mine", nil).Wait(), imap.ResponseCodeCannot)
	// CLOSE expunges nothing and closes the mailbox.
	if err := c.UnselectAndExpunge().Wait(); err != nil {
		t.Errorf("CLOSE: %v", err)
	}
	if _, err := c.Select(other, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Errorf("UNSELECT: %v", err)
	}
	if got := listNames(t, c); len(got) != 2 {
		t.Errorf("after all that, LIST: %v", got)
	}

	// MOVE is not advertised, so imapclient would fall back to COPY: send it by hand.
	rc := e.raw(t)
	if _, st := rc.cmd("LOGIN %s %s", carol, passwords[carol]); !strings.HasPrefix(st, "OK") {
		t.Fatalf("LOGIN: %s", st)
	}
	if _, st := rc.cmd("SELECT %s", crew); !strings.HasPrefix(st, "OK [READ-WRITE]") {
		t.Fatalf("SELECT: %s", st)
	}
	for _, cmd := range []string{"MOVE 1 " + other, "UID MOVE 1 " + other, "UID EXPUNGE 1", "EXPUNGE", "STORE 1 +FLAGS.SILENT (\\Deleted)"} {
		if _, st := rc.cmd("%s", cmd); !strings.HasPrefix(st, "NO [CANNOT]") {
			t.Errorf("%s: %s", cmd, st)
		}
	}
	if _, st := rc.cmd("CLOSE"); !strings.HasPrefix(st, "OK") {
		t.Errorf("CLOSE: %s", st)
	}
	// LSUB and SUBSCRIBE are harmless: every list shows as subscribed.
	if _, st := rc.cmd("SUBSCRIBE %s", crew); !strings.HasPrefix(st, "OK") {
		t.Errorf("SUBSCRIBE: %s", st)
	}
	if _, st := rc.cmd("UNSUBSCRIBE %s", crew); !strings.HasPrefix(st, "OK") {
		t.Errorf("UNSUBSCRIBE: %s", st)
	}
	lsub, st := rc.cmd(`LSUB "" "*"`)
	if !strings.HasPrefix(st, "OK") || len(lsub) != 2 || !strings.HasSuffix(lsub[0], `"crew"`) || !strings.HasSuffix(lsub[1], `"other"`) {
		t.Errorf("LSUB: %q %s", lsub, st)
	}
	if _, st := rc.cmd(`SUBSCRIBE nosuch@lists.example.test`); !strings.HasPrefix(st, "NO [NONEXISTENT]") {
		t.Errorf("SUBSCRIBE to a mailbox that does not exist: %s", st)
	}
}

func TestMembersOfAnotherListSeeNothingOfIt(t *testing.T) {
	e := newEnv(t)
	c := e.login(t, bob)
	if got := listNames(t, c); !slices.Equal(got, []string{otherBox}) {
		t.Errorf("LIST: %v", got)
	}
	_, err := c.Select(crew, nil).Wait()
	wantNo(t, "SELECT of another list", err, imap.ResponseCodeNonExistent)
	_, err = c.Select(crew, &imap.SelectOptions{ReadOnly: true}).Wait()
	wantNo(t, "EXAMINE of another list", err, imap.ResponseCodeNonExistent)
	_, err = c.Status(crew, &imap.StatusOptions{NumMessages: true}).Wait()
	wantNo(t, "STATUS of another list", err, imap.ResponseCodeNonExistent)
	// The same answer as for a list that does not exist, and for INBOX.
	_, err = c.Select("nosuch@lists.example.test", nil).Wait()
	wantNo(t, "SELECT of no list", err, imap.ResponseCodeNonExistent)
	_, err = c.Select("INBOX", nil).Wait()
	wantNo(t, "SELECT INBOX", err, imap.ResponseCodeNonExistent)
	if _, err := c.Select(other, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(allSeq(), &imap.FetchOptions{UID: true}).Collect()
	if err != nil || len(msgs) != len(otherPosts) {
		t.Errorf("FETCH of his own list: %d messages, %v", len(msgs), err)
	}
}

func TestRemovedMemberLosesTheMailboxAtOnce(t *testing.T) {
	e := newEnv(t)
	c := e.login(t, alice)
	if _, err := c.Select(crew, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	cc := e.login(t, carol)
	if _, err := cc.Select(crew, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	e.update(t, func(tx store.Tx) error {
		if err := tx.RemoveMember(crew, alice); err != nil {
			return err
		}
		return tx.RemoveMember(crew, carol)
	})
	_, err := c.Fetch(allSeq(), &imap.FetchOptions{UID: true}).Collect()
	wantNo(t, "FETCH after removal", err, imap.ResponseCodeNoPerm)
	_, err = c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	wantNo(t, "SEARCH after removal", err, imap.ResponseCodeNoPerm)
	_, err = c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect()
	wantNo(t, "STORE after removal", err, imap.ResponseCodeNoPerm)
	_, err = c.Select(crew, nil).Wait()
	wantNo(t, "SELECT after removal", err, imap.ResponseCodeNonExistent)
	_, err = c.Status(crew, &imap.StatusOptions{NumMessages: true}).Wait()
	wantNo(t, "STATUS after removal", err, imap.ResponseCodeNonExistent)
	if got := listNames(t, c); len(got) != 0 {
		t.Errorf("LIST after removal: %v", got)
	}
	if err := c.Noop().Wait(); err != nil {
		t.Errorf("NOOP after removal: %v", err)
	}
	// On no list any more: the right password no longer logs in.
	cl := e.dial(t, nil)
	wantNo(t, "LOGIN of an address on no list", cl.Login(alice, passwords[alice]).Wait(), imap.ResponseCodeAuthenticationFailed)
	if !strings.Contains(e.log.String(), "not a member of any list") {
		t.Errorf("the log does not say why the login failed:\n%s", e.log)
	}
	// Carol is still on other.
	_, err = cc.Fetch(allSeq(), &imap.FetchOptions{UID: true}).Collect()
	wantNo(t, "carol's FETCH after removal", err, imap.ResponseCodeNoPerm)
	if got := listNames(t, cc); !slices.Equal(got, []string{otherBox}) {
		t.Errorf("carol's LIST after removal from crew: %v", got)
	}
	if _, err := cc.Select(other, nil).Wait(); err != nil {
		t.Errorf("carol's SELECT of other: %v", err)
	}
	if _, err := e.login(t, carol).Select(other, nil).Wait(); err != nil {
		t.Errorf("carol, logging in again: %v", err)
	}
}

func TestWrongPasswordFails(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ user, pw string }{
		{alice, passwords[bob]},
		{alice, ""},
		{alice, passwords[alice] + " "},
		{"nobody@example.test", passwords[alice]},
		{"", ""},
	} {
		c := e.dial(t, nil)
		wantNo(t, "LOGIN "+tc.user, c.Login(tc.user, tc.pw).Wait(), imap.ResponseCodeAuthenticationFailed)
		if _, err := c.List("", "*", nil).Collect(); err == nil {
			t.Errorf("LIST works after a failed login of %q", tc.user)
		}
	}
	if strings.Contains(e.log.String(), passwords[bob]) {
		t.Error("a password made it into the log")
	}
	// AUTHENTICATE PLAIN, right and wrong.
	c := e.dial(t, nil)
	if err := c.Authenticate(sasl.NewPlainClient("", carol, passwords[carol])); err != nil {
		t.Errorf("AUTHENTICATE PLAIN: %v", err)
	} else if got := listNames(t, c); len(got) != 2 {
		t.Errorf("LIST after AUTHENTICATE: %v", got)
	}
	c = e.dial(t, nil)
	wantNo(t, "AUTHENTICATE PLAIN with a wrong password", c.Authenticate(sasl.NewPlainClient("", carol, "guess")), imap.ResponseCodeAuthenticationFailed)
}

func TestCapabilitiesAreOnlyWhatIsImplemented(t *testing.T) {
	e := newEnv(t)
	rc := e.raw(t)
	caps := func() []string {
		t.Helper()
		lines, st := rc.cmd("CAPABILITY")
		if !strings.HasPrefix(st, "OK") || len(lines) != 1 {
			t.Fatalf("CAPABILITY: %q %s", lines, st)
		}
		c := strings.Fields(strings.TrimPrefix(lines[0], "* CAPABILITY "))
		slices.Sort(c)
		return c
	}
	if got, want := caps(), []string{"AUTH=PLAIN", "IMAP4rev1", "LITERAL-", "SASL-IR"}; !slices.Equal(got, want) {
		t.Errorf("before login: %v, want %v", got, want)
	}
	if _, st := rc.cmd("LOGIN %s %s", alice, passwords[alice]); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}
	if got, want := caps(), []string{"ENABLE", "IDLE", "IMAP4rev1", "LITERAL-", "SASL-IR", "UNSELECT", "UTF8=ACCEPT"}; !slices.Equal(got, want) {
		t.Errorf("after login: %v, want %v", got, want)
	}
	// Not offered, not done: NAMESPACE is refused without a crash.
	if _, st := rc.cmd("NAMESPACE"); !strings.HasPrefix(st, "BAD") {
		t.Errorf("NAMESPACE: %s", st)
	}
	if _, st := rc.cmd("NOOP"); !strings.HasPrefix(st, "OK") {
		t.Errorf("NOOP: %s", st)
	}
}

func TestStatusItems(t *testing.T) {
	e := newEnv(t)
	rc := e.raw(t)
	if _, st := rc.cmd("LOGIN %s %s", carol, passwords[carol]); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}
	// Every item the library knows is answered, even those not asked about in the brief.
	lines, st := rc.cmd("STATUS %s (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE)", other)
	want := `* STATUS "other@lists.example.test" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY `
	if !strings.HasPrefix(st, "OK") || len(lines) != 1 || !strings.HasPrefix(lines[0], want) || !strings.Contains(lines[0], "UNSEEN 2 DELETED 0 SIZE ") {
		t.Errorf("STATUS: %q %s", lines, st)
	}
}

// waitExists waits for an EXISTS of want, passing over others (as of SELECT).
func waitExists(t *testing.T, exists <-chan uint32, want uint32, what string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case n := <-exists:
			if n == want {
				return
			}
			if n > want {
				t.Fatalf("%s: EXISTS %d, want %d", what, n, want)
			}
		case <-timeout:
			t.Fatalf("%s did not report the new post (EXISTS %d)", what, want)
		}
	}
}

// TestIdle: a session in IDLE hears of a new post when the server is notified, and without a
// notification within the polling interval.
func TestIdle(t *testing.T) {
	for _, notify := range []bool{true, false} {
		name := "polled"
		if notify {
			name = "notified"
		}
		t.Run(name, func(t *testing.T) {
			poll := time.Hour // only Notify can wake it
			if !notify {
				poll = 100 * time.Millisecond
			}
			e := newEnvWith(t, envOptions{insecureAuth: true, pollEvery: poll})
			exists := make(chan uint32, 10)
			c := e.dial(t, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
				Mailbox: func(d *imapclient.UnilateralDataMailbox) {
					if d.NumMessages != nil {
						exists <- *d.NumMessages
					}
				},
			}})
			if err := c.Login(alice, passwords[alice]).Wait(); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Select(crew, nil).Wait(); err != nil {
				t.Fatal(err)
			}
			idle, err := c.Idle()
			if err != nil {
				t.Fatal(err)
			}
			raw := crlf("From: Alice <alice@example.test>\nSubject: New post\nMessage-ID: <new@example.test>\n\nfresh\n")
			seq := e.appendPost(t, crew, raw, time.Date(2026, 3, 20, 9, 0, 0, 0, time.UTC))
			if notify {
				e.srv.Notify()
			}
			waitExists(t, exists, 7, "IDLE")
			if err := idle.Close(); err != nil {
				t.Fatal(err)
			}
			if err := idle.Wait(); err != nil {
				t.Fatal(err)
			}
			body := &imap.FetchItemBodySection{Peek: true}
			msgs, err := c.Fetch(imap.UIDSetNum(imap.UID(seq)), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{body}}).Collect()
			if err != nil || len(msgs) != 1 || msgs[0].SeqNum != 7 || !bytes.Equal(msgs[0].FindBodySection(body), raw) {
				t.Errorf("UID FETCH of the new post: %+v %v", msgs, err)
			}
			// Outside IDLE, any command brings news (here NOOP).
			e.appendPost(t, crew, crlf("From: Carol <carol@example.test>\nSubject: another\nMessage-ID: <another@example.test>\n\nx\n"), time.Date(2026, 3, 21, 9, 0, 0, 0, time.UTC))
			if err := c.Noop().Wait(); err != nil {
				t.Fatal(err)
			}
			waitExists(t, exists, 8, "NOOP")
		})
	}
}

// TestBrokenMultipartDoesNotEndTheConnection: the library builds a multipart with no parts for
// a boundary that never shows, then panics writing it, which ended the connection.
func TestBrokenMultipartDoesNotEndTheConnection(t *testing.T) {
	e := newEnv(t)
	broken := crlf(`
From: Spammer <spam@example.test>
To: crew@lists.example.test
Subject: broken
Message-ID: <broken@example.test>
MIME-Version: 1.0
Content-Type: multipart/mixed

no boundary parameter, so no parts
`)
	typeless := crlf(`
From: Spammer <spam@example.test>
Subject: typeless
Message-ID: <typeless@example.test>
Content-Type: text plain

a content type with a space for a slash
`)
	e.appendPost(t, crew, broken, time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC))
	e.appendPost(t, crew, typeless, time.Date(2026, 3, 21, 0, 0, 0, 0, time.UTC))
	c := e.login(t, alice)
	if _, err := c.Select(crew, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(7, 8), &imap.FetchOptions{
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection:   []*imap.FetchItemBodySection{{Part: []int{1}, Peek: true}},
	}).Collect()
	if err != nil || len(msgs) != 2 {
		t.Fatalf("FETCH BODYSTRUCTURE of broken messages: %v", err)
	}
	for _, m := range msgs {
		if bs, ok := m.BodyStructure.(*imap.BodyStructureSinglePart); !ok || bs.MediaType() != "text/plain" {
			t.Errorf("message %d: %#v, want text/plain", m.SeqNum, m.BodyStructure)
		}
	}
	if bs := msgs[0].BodyStructure.(*imap.BodyStructureSinglePart); bs.Size != uint32(len("no boundary parameter, so no parts\r\n")) {
		t.Errorf("size of the broken multipart's text: %d", bs.Size)
	}
	if err := c.Noop().Wait(); err != nil {
		t.Errorf("the connection ended: %v", err)
	}
}

// TestCloseEndsSessions: Close ends every session, IDLE included, and Serve returns nil.
func TestCloseEndsSessions(t *testing.T) {
	e := newEnv(t)
	c := e.login(t, alice)
	if _, err := c.Select(crew, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	other := e.login(t, carol)
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*imapclient.Client{c, other} {
		select {
		case <-cl.Closed():
		case <-time.After(10 * time.Second):
			t.Fatal("a session outlived Close")
		}
	}
	idle.Close()
	if _, err := imapclient.DialInsecure(e.addr, nil); err == nil {
		t.Error("the listener still accepts after Close")
	}
}

// TestFlagChangesReachTheMembersOtherSessions: a flag one session of a member changes is
// reported to the member's other open sessions at their next command, or at once in IDLE —
// and to no one else, and not back to the session that made it.
func TestFlagChangesReachTheMembersOtherSessions(t *testing.T) {
	e := newEnvWith(t, envOptions{insecureAuth: true, pollEvery: time.Hour}) // only a change can wake IDLE
	open := func(who string) *rawConn {
		rc := e.raw(t)
		if _, st := rc.cmd("LOGIN %s %s", who, passwords[who]); !strings.HasPrefix(st, "OK") {
			t.Fatalf("LOGIN %s: %s", who, st)
		}
		if _, st := rc.cmd("SELECT %s", crew); !strings.HasPrefix(st, "OK") {
			t.Fatalf("SELECT as %s: %s", who, st)
		}
		return rc
	}
	fetches := func(untagged []string) []string {
		var out []string
		for _, l := range untagged {
			if strings.Contains(l, " FETCH ") {
				out = append(out, l)
			}
		}
		return out
	}
	a, b, other := open(alice), open(alice), open(carol)

	a.cmd("STORE 2 +FLAGS (\\Flagged)")
	if got, _ := b.cmd("NOOP"); !slices.Equal(fetches(got), []string{`* 2 FETCH (UID 2 FLAGS (\Flagged))`}) {
		t.Errorf("the other session's NOOP after STORE: %q", got)
	}
	if got, _ := b.cmd("NOOP"); len(fetches(got)) != 0 {
		t.Errorf("a second NOOP repeats: %q", got)
	}
	if got, _ := a.cmd("NOOP"); len(fetches(got)) != 0 {
		t.Errorf("the session that stored hears its own change again: %q", got)
	}
	if got, _ := other.cmd("NOOP"); len(fetches(got)) != 0 {
		t.Errorf("another member hears alice's flags: %q", got)
	}

	// BODY[] sets \Seen in one session; the other hears it.
	a.cmd("FETCH 3 BODY[]")
	if got, _ := b.cmd("NOOP"); !slices.Equal(fetches(got), []string{`* 3 FETCH (UID 3 FLAGS (\Seen))`}) {
		t.Errorf("the other session's NOOP after BODY[]: %q", got)
	}

	// In IDLE the change comes at once.
	b.tag++
	fmt.Fprintf(b.c, "x%d IDLE\r\n", b.tag)
	if l := b.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	a.cmd("STORE 2 -FLAGS.SILENT (\\Flagged)")
	if l := b.line(); l != `* 2 FETCH (UID 2 FLAGS ())` {
		t.Errorf("in IDLE after STORE -FLAGS: %q", l)
	}
	fmt.Fprintf(b.c, "DONE\r\n")
	if l := b.line(); !strings.HasPrefix(l, fmt.Sprintf("x%d OK", b.tag)) {
		t.Errorf("IDLE ends with %q", l)
	}
}
