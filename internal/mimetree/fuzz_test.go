package mimetree

import (
	"io"
	"testing"
)

// The seed corpus is in testdata/fuzz/FuzzWalk; "go test" runs it, "go test -fuzz=FuzzWalk
// ./internal/mimetree" explores further.

// FuzzWalk feeds Walk arbitrary messages within small limits: it must not panic, the tree must
// keep to the limits, a flat part must have nothing listed inside it, and the body Keep keeps
// must be what the walk counted.
func FuzzWalk(f *testing.F) {
	lim := Limits{Depth: 4, Parts: 12}
	f.Fuzz(func(t *testing.T, msg []byte) {
		leaves := 0
		w := Walker{Limits: lim, Leaf: func(p *Part, body io.Reader) error {
			leaves++
			if p.Flat || p.Multipart() || p.Message() {
				t.Errorf("Leaf called for a part that is not a leaf: %s, flat %v", p.Type, p.Flat)
			}
			// A body broken part way reads as far as it goes.
			_, _ = io.Copy(io.Discard, io.LimitReader(body, 64))
			return nil
		}}
		root, err := w.Walk(msg)
		if err != nil {
			if root != nil {
				t.Errorf("a tree with the error %v", err)
			}
			return
		}
		if root.Size > int64(len(msg)) {
			t.Errorf("a body of %d bytes in a message of %d", root.Size, len(msg))
		}
		var parts []*Part
		var visit func(p *Part)
		visit = func(p *Part) {
			parts = append(parts, p)
			if p.Depth > lim.Depth {
				t.Errorf("a part at depth %d", p.Depth)
			}
			if p.Flat && len(p.Children) > 0 {
				t.Errorf("a flat %s with %d parts listed", p.Type, len(p.Children))
			}
			var sum int64
			for i, c := range p.Children {
				if c.Parent != p || c.Index != i || c.Depth != p.Depth+1 {
					t.Errorf("part %v is not where it says", c.Pos())
				}
				sum += c.Size
				visit(c)
			}
			if sum > p.Size {
				t.Errorf("parts of %d bytes in a body of %d", sum, p.Size)
			}
		}
		visit(root)
		if len(parts) > lim.Parts {
			t.Errorf("%d parts listed, more than %d", len(parts), lim.Parts)
		}
		// Keep the last part listed: its body is what was counted.
		last := parts[len(parts)-1]
		k := Walker{Limits: lim, Keep: last.Pos()}
		again, err := k.Walk(msg)
		if err != nil {
			t.Fatalf("the second walk: %v", err)
		}
		p := again
		for _, i := range last.Pos() {
			p = p.Children[i]
		}
		if int64(len(p.Body)) != last.Size || p.Size != last.Size {
			t.Errorf("kept %d bytes of a part of %d", len(p.Body), last.Size)
		}
	})
}
