package fstore

/*
#include <stdlib.h>
#include "fstore.h"
*/
import "C"

import (
	"context"
	"fmt"
	"runtime/cgo"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"
)

// computeCall is what the C library's userdata stands for, through a
// cgo.Handle: C never holds a Go pointer.
type computeCall struct {
	ctx context.Context
	key Key
	fn  ComputeFunc
	// Set by the trampoline, read after the C call returns on the same goroutine.
	err       error
	nilReader bool
}

// fstoreGoCompute is the compute callback handed to
// fstore_store_get_or_compute. It runs on the calling goroutine; a panic in
// the compute function becomes FSTORE_STATUS_CALLBACK_FAILED with the panic's
// message rather than unwinding through C.
//
//export fstoreGoCompute
func fstoreGoCompute(userdata unsafe.Pointer, _ *C.fstore_key, out *C.struct_ArrowArrayStream, cerr *C.fstore_error) (status C.fstore_status) {
	call := cgo.Handle(uintptr(userdata)).Value().(*computeCall)
	defer func() {
		if r := recover(); r != nil {
			if err, ok := r.(error); ok {
				call.err = fmt.Errorf("compute panicked: %w", err)
			} else {
				call.err = fmt.Errorf("compute panicked: %v", r)
			}
			status = failCallback(cerr, call.err)
		}
	}()
	rdr, err := call.fn(call.ctx, call.key)
	if err != nil {
		if rdr != nil {
			rdr.Release()
		}
		call.err = err
		return failCallback(cerr, err)
	}
	if rdr == nil {
		// Leave the stream unset: the library reports that as invalid data.
		call.nilReader = true
		return C.FSTORE_STATUS_OK
	}
	exportReader(rdr, out) // retains rdr for the stream
	rdr.Release()          // the reference compute handed over
	return C.FSTORE_STATUS_OK
}

func failCallback(cerr *C.fstore_error, err error) C.fstore_status {
	msg := C.CString(err.Error())
	defer C.free(unsafe.Pointer(msg))
	C.fstore_error_set(cerr, C.FSTORE_STATUS_CALLBACK_FAILED, msg)
	return C.FSTORE_STATUS_CALLBACK_FAILED
}

// exportReader exports rdr into the zeroed *out, retaining it until the
// consumer releases the stream. The library reads the stream through Go
// callbacks; a panic in the reader becomes a stream error there.
func exportReader(rdr array.RecordReader, out *C.struct_ArrowArrayStream) {
	cdata.ExportRecordReader(&guardedReader{RecordReader: rdr}, (*cdata.CArrowArrayStream)(unsafe.Pointer(out)))
}

// guardedReader turns panics of a reader read from C into its error, since
// a Go panic cannot unwind through C.
type guardedReader struct {
	array.RecordReader
	err error
}

func (g *guardedReader) recovered(what string) {
	if r := recover(); r != nil {
		g.err = fmt.Errorf("the record reader panicked in %s: %v", what, r)
	}
}

func (g *guardedReader) Schema() (schema *arrow.Schema) {
	defer g.recovered("Schema")
	if g.err != nil {
		return nil
	}
	return g.RecordReader.Schema()
}

func (g *guardedReader) Next() (ok bool) {
	defer g.recovered("Next")
	return g.err == nil && g.RecordReader.Next()
}

func (g *guardedReader) Err() error {
	if g.err != nil {
		return g.err
	}
	return g.RecordReader.Err()
}
