package imapd

import (
	"testing"

	"github.com/emersion/go-imap/v2"

	"crewmail/internal/mimetree"
)

// The seed corpus is in testdata/fuzz/FuzzStructure; "go test" runs it, "go test
// -fuzz=FuzzStructure ./imapd" explores further.

// FuzzStructure feeds what FETCH and SEARCH read of an archived post arbitrary messages: none
// may panic, the BODYSTRUCTURE must be no deeper than mimetree's limit and writable (no
// multipart without parts), and each part it lists must be a section BODY[] finds.
func FuzzStructure(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		bs := bodyStructure(raw)
		var walk func(bs imap.BodyStructure, path []int, depth int)
		walk = func(bs imap.BodyStructure, path []int, depth int) {
			if depth > mimetree.Default.Depth+1 {
				t.Fatalf("BODYSTRUCTURE %d levels deep", depth)
			}
			switch b := bs.(type) {
			case *imap.BodyStructureMultiPart:
				if len(b.Children) == 0 || b.Subtype == "" {
					t.Fatalf("a multipart %q of %d parts at %v", b.Subtype, len(b.Children), path)
				}
				for i, c := range b.Children {
					walk(c, append(append([]int(nil), path...), i+1), depth+1)
				}
			case *imap.BodyStructureSinglePart:
				if b.Type == "" || b.Subtype == "" || b.Extended == nil {
					t.Fatalf("a part %q/%q at %v", b.Type, b.Subtype, path)
				}
				if len(path) > 0 {
					got := bodySection(raw, &imap.FetchItemBodySection{Part: path})
					if uint32(len(got)) != b.Size {
						t.Errorf("BODY[%v] has %d bytes, BODYSTRUCTURE says %d", path, len(got), b.Size)
					}
				}
				if m := b.MessageRFC822; m != nil {
					// RFC 9051 §6.4.5: the parts of a carried message are numbered from that of
					// the message/rfc822 part; a body that is not a multipart is its part 1.
					inner := path
					if _, ok := m.BodyStructure.(*imap.BodyStructureSinglePart); ok {
						inner = append(append([]int(nil), path...), 1)
					}
					walk(m.BodyStructure, inner, depth+1)
				}
			default:
				t.Fatalf("BODYSTRUCTURE %T at %v", bs, path)
			}
		}
		// The text of a message that is not a multipart is its part 1.
		var top []int
		if _, ok := bs.(*imap.BodyStructureSinglePart); ok {
			top = []int{1}
		}
		walk(bs, top, 0)
		for _, s := range []imap.PartSpecifier{imap.PartSpecifierHeader, imap.PartSpecifierText, imap.PartSpecifierMIME} {
			bodySection(raw, &imap.FetchItemBodySection{Part: []int{1, 1}, Specifier: s})
		}
		binarySection(raw, &imap.FetchItemBinarySection{Part: []int{1}})
		matchText(raw, "help", true)
		matchText(raw, "help", false)
	})
}
