package store_test

import (
	"testing"

	"crewmail/store"
	"crewmail/store/storetest"
)

// TestConformance: the bbolt file passes the suite every backend must.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend {
		s, err := store.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
