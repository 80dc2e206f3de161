//go:build !linux

package store

// ReleaseMapped gives back the database pages this process has read through bbolt's memory
// map; on this system it leaves them to the kernel.
func (s *Store) ReleaseMapped() error { return nil }
