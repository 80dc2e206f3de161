package store

import (
	"fmt"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// ReleaseMapped gives back the database pages this process has read through bbolt's memory
// map. Every page read stays mapped into the process, and counts in its resident set, until the
// kernel needs the memory; a pass over the whole archive (a round of digests) would otherwise
// look as large as the file. The pages stay in the page cache: reading one again costs a minor
// fault, not a disk read.
//
// The mapping is read-only and shared (bbolt writes with pwrite), so MADV_DONTNEED only drops
// this process's references (madvise(2)). It runs inside a read transaction, which holds off
// bbolt's remapping, so the address range is the live mapping for the whole call.
func (s *Store) ReleaseMapped() error {
	return s.db.View(func(tx *bolt.Tx) error {
		info := s.db.Info()
		_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, info.Data, uintptr(tx.Size()), syscall.MADV_DONTNEED)
		if errno != 0 {
			return fmt.Errorf("release mapped pages of %s: %w", s.path, errno)
		}
		return nil
	})
}
