package fstore

/*
#include <stdint.h>
#include "fstore.h"

// A hit must never compute: the raw call fails loudly if it would.
static fstore_status fstore_go_raw_never(void* userdata, const fstore_key* key, struct ArrowArrayStream* out,
                                         fstore_error* error) {
	(void)userdata;
	(void)key;
	(void)out;
	fstore_error_set(error, FSTORE_STATUS_CALLBACK_FAILED, "the entry is missing");
	return FSTORE_STATUS_CALLBACK_FAILED;
}

// fstore_store_get_or_compute of an existing entry and the release of its
// stream, all in C.
static fstore_status fstore_go_raw_hit(const fstore_store* store, const fstore_key* key, fstore_error* error) {
	struct ArrowArrayStream out;
	fstore_status status = fstore_store_get_or_compute(store, key, NULL, fstore_go_raw_never, NULL, &out, error);
	if (status == FSTORE_STATUS_OK) out.release(&out);
	return status;
}
*/
import "C"

// rawHit is the floor under a Go call on a hit: one cgo call that runs
// fstore_store_get_or_compute and releases the stream, with the key
// converted beforehand. The per-call benchmark compares Get and
// GetOrCompute with it (see bench_test.go).
func (s *Store) rawHit(key *cKey) error {
	var cerr C.fstore_error
	if status := C.fstore_go_raw_hit(s.ptr, &key.c, &cerr); status != C.FSTORE_STATUS_OK {
		return takeError(status, &cerr)
	}
	return nil
}
