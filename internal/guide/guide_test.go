package guide

import (
	"strings"
	"testing"

	"crewmail/docs"
)

func TestPageHasTheListsOwnAddresses(t *testing.T) {
	g, err := New(docs.Member)
	if err != nil {
		t.Fatal(err)
	}
	page, err := g.Page(List{Name: "Choir <b>tenors</b>", Address: "choir@lists.example.net", Separator: "+", IMAPHost: "imap.example.net"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<h1", "choir+subscribe@lists.example.net", "choir-request@lists.example.net", "choir+each@lists.example.net", "imap.example.net", "Choir &lt;b&gt;tenors&lt;/b&gt;", "<table>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, bad := range []string{"example.org", "<b>tenors", "Garden crew", "\n## "} {
		if strings.Contains(page, bad) {
			t.Errorf("the page has %q", bad)
		}
	}
	sample, err := g.Page(List{})
	if err != nil || !strings.Contains(sample, "crew+subscribe@example.org") {
		t.Errorf("without a list, the guide's own sample list: %v", err)
	}
}
