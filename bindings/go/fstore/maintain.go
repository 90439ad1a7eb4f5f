package fstore

/*
#include "fstore.h"
*/
import "C"

import (
	"runtime"
	"time"
	"unsafe"
)

// MaintainOptions say what Maintain removes besides what is always safe to
// remove.
type MaintainOptions struct {
	// MaxAge expires entries created longer ago than this (file and
	// manifest row, each under its entry's lock). Zero or negative: nothing
	// expires.
	MaxAge time.Duration
	// Grace protects everything modified more recently than this (rounded
	// up to whole milliseconds): the temporary file of a writer still at
	// work, an entry just published. Zero protects nothing; negative is
	// refused (ErrInvalidArgument).
	Grace time.Duration
	// DryRun counts what would be removed and changes nothing.
	DryRun bool
}

// MaintainReport says what Maintain removed (or, in a dry run, would have).
type MaintainReport struct {
	ExpiredEntries  uint64 // entries older than MaxAge: file and row
	RowsWithoutFile uint64 // manifest rows whose file is gone
	CorruptFiles    uint64 // entry files that failed verification
	TempFiles       uint64 // temporary files left by writers that died
	BytesFreed      uint64
	ReindexedFiles  uint64 // verified entry files whose missing manifest row was written again
	InvalidRows     uint64 // manifest rows with a malformed entry id (never used as paths)
	LockFiles       uint64 // lock files nobody held (embedded stores)
}

// Maintain cleans the cache directory: it removes expired entries, manifest
// rows whose file is gone, entry files that fail verification, stale
// temporary files and unused lock files, and re-indexes verified entry files
// whose manifest row is missing. opts nil uses the library's defaults:
// nothing expires, one hour of grace. Safe while other workers use the
// cache.
func (s *Store) Maintain(opts *MaintainOptions) (MaintainReport, error) {
	defer runtime.KeepAlive(s)
	var options *C.fstore_maintain_options
	if opts != nil {
		options = &C.fstore_maintain_options{
			max_age_ms: -1, // keeps every entry
			grace_ms:   C.int64_t(ceilMillis(opts.Grace)),
			dry_run:    C.bool(opts.DryRun),
		}
		if opts.MaxAge > 0 {
			options.max_age_ms = C.int64_t(ceilMillis(opts.MaxAge))
		}
	}
	var out C.fstore_maintain_report
	var cerr C.fstore_error
	status := C.fstore_store_maintain(s.handle(), options, C.size_t(unsafe.Sizeof(C.fstore_maintain_options{})),
		&out, C.size_t(unsafe.Sizeof(out)), &cerr)
	if status != C.FSTORE_STATUS_OK {
		return MaintainReport{}, takeError(status, &cerr)
	}
	return MaintainReport{
		ExpiredEntries:  uint64(out.expired_entries),
		RowsWithoutFile: uint64(out.rows_without_file),
		CorruptFiles:    uint64(out.corrupt_files),
		TempFiles:       uint64(out.temp_files),
		BytesFreed:      uint64(out.bytes_freed),
		ReindexedFiles:  uint64(out.reindexed_files),
		InvalidRows:     uint64(out.invalid_rows),
		LockFiles:       uint64(out.lock_files),
	}, nil
}
