package store

import (
	"errors"
	"fmt"
	"testing"
)

// DamageCursor overwrites the digest cursor of addr on list with bytes no reader accepts, as a
// failing disk or an older bug could leave it: for tests of what the packages above do with a
// record they cannot read. Outside a test binary it refuses and changes nothing.
func (t *boltTx) DamageCursor(list, addr string) error {
	if !testing.Testing() {
		return errors.New("store: DamageCursor runs only in tests")
	}
	b := t.listBucket(list)
	if b == nil {
		return fmt.Errorf("list %s: %w", list, ErrNotFound)
	}
	return b.Bucket(subCursors).Put([]byte(addr), []byte("{\"seq\":"))
}
