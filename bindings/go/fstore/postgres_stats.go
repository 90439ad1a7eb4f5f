package fstore

/*
#include "fstore.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// PoolStats are the figures of a PostgreSQL store's connection pool.
type PoolStats struct {
	Size  uint32 // connections open, idle or in use
	Idle  uint32
	InUse uint32
	Waits uint64 // check-outs that had to wait for a connection
}

// LockStats count the advisory locks in the manifest's database (from
// pg_locks).
type LockStats struct {
	Held    uint64
	Waiting uint64
}

// PoolStats returns the PostgreSQL connection pool's figures. ok is false
// (and err nil) when the store does not use PostgreSQL: an embedded store
// has no pool.
func (s *Store) PoolStats() (stats PoolStats, ok bool, err error) {
	defer runtime.KeepAlive(s)
	var out C.fstore_pool_stats
	var cerr C.fstore_error
	status := C.fstore_store_pool_stats(s.handle(), &out, C.size_t(unsafe.Sizeof(out)), &cerr)
	if ok, err := postgresOnly(status, &cerr); !ok {
		return PoolStats{}, false, err
	}
	return PoolStats{
		Size:  uint32(out.size),
		Idle:  uint32(out.idle),
		InUse: uint32(out.in_use),
		Waits: uint64(out.waits),
	}, true, nil
}

// LockStats returns how many advisory locks the manifest's database holds
// and awaits. ok is false (and err nil) when the store does not use
// PostgreSQL: embedded stores lock files, which nobody counts.
func (s *Store) LockStats() (stats LockStats, ok bool, err error) {
	defer runtime.KeepAlive(s)
	var out C.fstore_lock_stats
	var cerr C.fstore_error
	status := C.fstore_store_lock_stats(s.handle(), &out, C.size_t(unsafe.Sizeof(out)), &cerr)
	if ok, err := postgresOnly(status, &cerr); !ok {
		return LockStats{}, false, err
	}
	return LockStats{Held: uint64(out.held), Waiting: uint64(out.waiting)}, true, nil
}

// postgresOnly reads the status of a call that only a PostgreSQL store
// answers: ok on success, not ok and no error for NOT_FOUND (not PostgreSQL).
func postgresOnly(status C.fstore_status, cerr *C.fstore_error) (bool, error) {
	switch status {
	case C.FSTORE_STATUS_OK:
		return true, nil
	case C.FSTORE_STATUS_NOT_FOUND:
		C.fstore_error_release(cerr)
		return false, nil
	default:
		return false, takeError(status, cerr)
	}
}
