package fstore

/*
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include "fstore.h"
*/
import "C"

import (
	"errors"
	"runtime/cgo"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/cdata"
)

// recordSource is what an exported stream reads: an array.RecordReader,
// without the reference counting, which the stream's owner handles.
type recordSource interface {
	Schema() *arrow.Schema
	Next() bool
	RecordBatch() arrow.RecordBatch
	Err() error
}

// exportedStream is the state behind a stream that libfstore reads through
// the callbacks below. They run under C frames, so each one recovers every
// panic, in the source's methods and in arrow-go's exporter alike, and turns
// it into the stream's error: a Go panic must never unwind through the
// library.
type exportedStream struct {
	src     recordSource
	release func()
	err     error   // the first failure; every later call reports it again
	cerr    *C.char // err for get_last_error, freed on release
}

func streamOf(handle C.uintptr_t) *exportedStream {
	return cgo.Handle(handle).Value().(*exportedStream)
}

//export fstoreGoStreamSchema
func fstoreGoStreamSchema(handle C.uintptr_t, out *C.struct_ArrowSchema) C.int {
	returned := false
	defer crashOnEscape("an exported stream's get_schema", &returned)
	code := streamOf(handle).schema((*cdata.CArrowSchema)(unsafe.Pointer(out)))
	returned = true
	return code
}

//export fstoreGoStreamNext
func fstoreGoStreamNext(handle C.uintptr_t, out *C.struct_ArrowArray) C.int {
	returned := false
	defer crashOnEscape("an exported stream's get_next", &returned)
	code := streamOf(handle).next((*cdata.CArrowArray)(unsafe.Pointer(out)))
	returned = true
	return code
}

//export fstoreGoStreamLastError
func fstoreGoStreamLastError(handle C.uintptr_t) *C.char {
	returned := false
	defer crashOnEscape("an exported stream's get_last_error", &returned)
	msg := streamOf(handle).cerr
	returned = true
	return msg
}

//export fstoreGoStreamRelease
func fstoreGoStreamRelease(handle C.uintptr_t) {
	returned := false
	defer crashOnEscape("an exported stream's release", &returned)
	h := cgo.Handle(handle)
	h.Value().(*exportedStream).close()
	h.Delete()
	returned = true
}

// guard runs fn, making a panic in it the stream's error; it reports
// whether fn returned normally.
func (s *exportedStream) guard(what string, fn func()) bool {
	if err := recovered(what, fn); err != nil {
		s.fail(err)
		return false
	}
	return true
}

func (s *exportedStream) fail(err error) C.int {
	if s.err == nil {
		s.err = err
		s.cerr = C.CString(err.Error())
	}
	return C.EIO
}

func (s *exportedStream) schema(out *cdata.CArrowSchema) C.int {
	if s.err != nil {
		return C.EIO
	}
	var schema *arrow.Schema
	if !s.guard("the reader panicked in Schema", func() { schema = s.src.Schema() }) {
		return C.EIO
	}
	if schema == nil {
		return s.fail(errors.New("the reader's Schema is nil"))
	}
	if !s.guard("arrow-go panicked exporting the schema", func() { cdata.ExportArrowSchema(schema, out) }) {
		return C.EIO
	}
	return 0
}

func (s *exportedStream) next(out *cdata.CArrowArray) C.int {
	if s.err != nil {
		return C.EIO
	}
	var more bool
	if !s.guard("the reader panicked in Next", func() { more = s.src.Next() }) {
		return C.EIO
	}
	if !more {
		var err error
		if !s.guard("the reader panicked in Err", func() { err = s.src.Err() }) {
			return C.EIO
		}
		if err != nil {
			return s.fail(err)
		}
		return 0 // the end: *out stays released (zeroed)
	}
	var rec arrow.RecordBatch
	if !s.guard("the reader panicked in RecordBatch", func() { rec = s.src.RecordBatch() }) {
		return C.EIO
	}
	if rec == nil {
		return s.fail(errors.New("the reader's Next returned true and its RecordBatch nil"))
	}
	// The export retains what it shares, so the source may release rec.
	if !s.guard("arrow-go panicked exporting a record batch", func() { cdata.ExportArrowRecordBatch(rec, out, nil) }) {
		return C.EIO
	}
	return 0
}

func (s *exportedStream) close() {
	if s.release != nil {
		if err := recovered("releasing the reader panicked", s.release); err != nil && s.err == nil {
			s.err = err
		}
	}
	if s.cerr != nil {
		C.free(unsafe.Pointer(s.cerr))
		s.cerr = nil
	}
}
