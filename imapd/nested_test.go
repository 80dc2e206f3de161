package imapd

import (
	"bytes"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"crewmail/internal/mailtest"
	"crewmail/internal/mimetree"
)

// A post nested 10,000 levels deep, as message/rfc822 parts (320 KB) or as multiparts, is
// served to a mail client that fetches its BODYSTRUCTURE and searches its text with bounded
// memory and time: what lies beyond the nesting limit is one flat part. Memory and time are
// bounded generously: before the limit, the first took the server past 2 GB and the second
// cost 23 s of CPU for each command.
func TestDeeplyNestedPostDoesNotExhaustTheServer(t *testing.T) {
	const levels = 10000
	hdr := "From: Mallory <mallory@example.test>\r\nTo: crew@lists.example.test\r\n" +
		"Subject: nested\r\nMessage-ID: <nested@example.test>\r\nMIME-Version: 1.0\r\n"
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"message/rfc822", mailtest.NestedMessage(hdr, levels, "help")},
		{"multipart", mailtest.NestedMultipart(hdr, levels, "help")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			uid := e.appendPost(t, crew, tc.raw, time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC))
			c := e.login(t, alice)
			if _, err := c.Select(crew, nil).Wait(); err != nil {
				t.Fatal(err)
			}
			hwm := mailtest.ProcStatus("VmHWM")
			start := time.Now()
			msgs, err := c.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{
				BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
			}).Collect()
			fetchTime := time.Since(start)
			if err != nil || len(msgs) != 1 {
				t.Fatalf("FETCH BODYSTRUCTURE: %v", err)
			}
			start = time.Now()
			found, err := c.UIDSearch(&imap.SearchCriteria{Text: []string{"help"}}, nil).Wait()
			searchTime := time.Since(start)
			if err != nil {
				t.Fatalf("SEARCH TEXT: %v", err)
			}
			grown := mailtest.ProcStatus("VmHWM") - hwm
			t.Logf("BODYSTRUCTURE %v, SEARCH TEXT %v, peak memory grew %d MiB", fetchTime, searchTime, grown>>20)
			if fetchTime > 10*time.Second || searchTime > 10*time.Second {
				t.Errorf("BODYSTRUCTURE took %v and SEARCH TEXT %v, want each under 10 s", fetchTime, searchTime)
			}
			if grown > 300<<20 {
				t.Errorf("peak memory grew by %d MiB, want under 300 MiB", grown>>20)
			}

			// The structure goes down to the limit, where one flat part stands for the rest;
			// BODY[] of its section is that part's bytes.
			bs, depth := msgs[0].BodyStructure, 0
			var path []int // RFC 9051 §6.4.5
			if _, ok := bs.(*imap.BodyStructureSinglePart); ok {
				path = []int{1}
			}
			for {
				if mp, ok := bs.(*imap.BodyStructureMultiPart); ok && len(mp.Children) == 1 {
					bs = mp.Children[0]
					path = append(path, 1)
				} else if sp, ok := bs.(*imap.BodyStructureSinglePart); ok && sp.MessageRFC822 != nil {
					bs = sp.MessageRFC822.BodyStructure
					if _, ok := bs.(*imap.BodyStructureSinglePart); ok {
						path = append(path, 1)
					}
				} else {
					break
				}
				depth++
			}
			flat, ok := bs.(*imap.BodyStructureSinglePart)
			if !ok || flat.MediaType() != "application/octet-stream" || depth != mimetree.Default.Depth || flat.Size == 0 {
				t.Fatalf("at depth %d: %#v, want one application/octet-stream part at depth %d", depth, bs, mimetree.Default.Depth)
			}
			section := &imap.FetchItemBodySection{Part: path, Peek: true}
			msgs, err = c.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
			if err != nil || len(msgs) != 1 {
				t.Fatalf("FETCH BODY[%v]: %v", path, err)
			}
			if got := msgs[0].FindBodySection(section); uint32(len(got)) != flat.Size || !bytes.Contains(got, []byte("help")) {
				t.Errorf("BODY[%v] of the flat part: %d bytes, want its %d bytes with the text beyond the limit", path, len(got), flat.Size)
			}
			// The text beyond the limit is in no part searched.
			if len(found.AllUIDs()) != 0 {
				t.Errorf("SEARCH TEXT help found %v in the flat part", found.AllUIDs())
			}
			if err := c.Noop().Wait(); err != nil {
				t.Errorf("the connection ended: %v", err)
			}
		})
	}
}
