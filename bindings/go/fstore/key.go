package fstore

/*
#include <stdlib.h>
#include "fstore.h"
*/
import "C"

import (
	"math"
	"time"
	"unsafe"
)

// Key names one cache entry. The library validates it: FeatureSet and Symbol
// hold 1 to 1,024 bytes of UTF-8, End is not before Start, Config is JSON
// text ("" means {}) and is canonicalised, so that {"a":1,"b":2} and
// { "b": 2, "a": 1 } name the same entry.
type Key struct {
	FeatureSet string
	Symbol     string
	// Start and End are the first and last day of the data, inclusive. Only
	// the calendar date counts, in the time's own location; the zero
	// time.Time is refused.
	Start, End time.Time
	Config     string
}

// cKey is a Key in C memory, valid until free. One allocation holds its
// three strings: a hit costs few enough that each cgo call counts.
type cKey struct {
	c   C.fstore_key
	buf unsafe.Pointer
}

func (k *cKey) free() {
	C.free(k.buf)
	*k = cKey{}
}

// toC converts the key for a call. The checks here are only those the
// conversion itself needs (C strings cannot hold NUL, days must fit date32);
// everything else is the library's to judge.
func (k Key) toC() (*cKey, error) {
	start, err := day("key.Start", k.Start)
	if err != nil {
		return nil, err
	}
	end, err := day("key.End", k.End)
	if err != nil {
		return nil, err
	}
	parts := [...]struct{ what, text string }{
		{"key.FeatureSet", k.FeatureSet}, {"key.Symbol", k.Symbol}, {"key.Config", k.Config},
	}
	size := 0
	for _, p := range parts {
		if err := checkNoNUL(p.what, p.text); err != nil {
			return nil, err
		}
		size += len(p.text) + 1
	}
	out := &cKey{buf: C.malloc(C.size_t(size))}
	buf := unsafe.Slice((*byte)(out.buf), size)
	var texts [len(parts)]*C.char
	at := 0
	for i, p := range parts {
		texts[i] = (*C.char)(unsafe.Pointer(&buf[at]))
		at += copy(buf[at:], p.text)
		buf[at] = 0
		at++
	}
	out.c.feature_set, out.c.symbol, out.c.config = texts[0], texts[1], texts[2]
	out.c.start_date = C.int32_t(start)
	out.c.end_date = C.int32_t(end)
	return out, nil
}

const secondsPerDay = 24 * 60 * 60

// day is t's calendar date (in t's location) as days since 1970-01-01.
func day(what string, t time.Time) (int32, error) {
	if t.IsZero() {
		return 0, invalidArgument("%s is not set (the zero time.Time)", what)
	}
	y, m, d := t.Date()
	days := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / secondsPerDay
	if days < math.MinInt32 || days > math.MaxInt32 {
		return 0, invalidArgument("%s (%s) is out of the range of date32", what, t.Format(time.DateOnly))
	}
	return int32(days), nil
}

// Canonical validates k as the library does and returns what identifies its
// entry: the canonical form of its config (RFC 8785 JSON, so that
// {"b":2,"a":1.0} gives {"a":1,"b":2}) and its entry id, 64 hex digits. Two
// keys name the same entry exactly when their entry ids are equal: compare
// or hash keys by it, not by their fields.
func (k Key) Canonical() (config, entryID string, err error) {
	ckey, err := k.toC()
	if err != nil {
		return "", "", err
	}
	defer ckey.free()
	var cconfig *C.char
	var id [C.FSTORE_ENTRY_ID_SIZE]C.char
	var cerr C.fstore_error
	if status := C.fstore_key_canonical(&ckey.c, &cconfig, &id[0], &cerr); status != C.FSTORE_STATUS_OK {
		return "", "", takeError(status, &cerr)
	}
	defer C.fstore_string_free(&cconfig)
	return C.GoString(cconfig), C.GoString(&id[0]), nil
}
