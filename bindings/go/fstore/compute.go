package fstore

/*
#include <stdlib.h>
#include "fstore.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime/cgo"
	"time"
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
	err       error           // why the compute failed, or why its caller gave up
	gaveUp    bool            // reported as the caller's cancellation, not a failure
	nilReader bool            // compute returned neither a reader nor an error
	stream    *exportedStream // what the library read, and how that ended
}

// fstoreGoCompute is the compute callback handed to
// fstore_store_get_or_compute. It runs on the calling goroutine. Every piece
// of the caller's code runs here, under recover: the compute function, then
// each method of the reader it returns, which is read to its end (the library
// keeps the whole entry anyway) and released. So a panic anywhere in them
// fails the compute with FSTORE_STATUS_CALLBACK_FAILED instead of unwinding
// through the library, and the library then reads the batches through a
// stream of this package's own recovered callbacks.
//
//export fstoreGoCompute
func fstoreGoCompute(userdata unsafe.Pointer, _ *C.fstore_key, out *C.struct_ArrowArrayStream, cerr *C.fstore_error) C.fstore_status {
	returned := false
	defer crashOnEscape("the compute callback", &returned)
	call := cgo.Handle(uintptr(userdata)).Value().(*computeCall)
	status := call.run(out, cerr)
	returned = true
	return status
}

func (c *computeCall) run(out *C.struct_ArrowArrayStream, cerr *C.fstore_error) C.fstore_status {
	rdr, err := c.callCompute()
	if err != nil {
		return c.failed(cerr, err)
	}
	if rdr == nil {
		// Leave the stream unset: the library reports that as invalid data.
		c.nilReader = true
		return C.FSTORE_STATUS_OK
	}
	batches, err := materialise(rdr)
	if err != nil {
		return c.failed(cerr, err)
	}
	c.stream = exportStream(batches, batches.release, out)
	return C.FSTORE_STATUS_OK
}

// callCompute runs the compute function; a panic becomes its error.
func (c *computeCall) callCompute() (rdr array.RecordReader, err error) {
	var returnedErr error
	if p := recovered("compute panicked", func() { rdr, returnedErr = c.fn(c.ctx, c.key) }); p != nil {
		return nil, p
	}
	if returnedErr != nil {
		if rdr != nil {
			if p := recovered("releasing the reader compute returned with its error panicked", rdr.Release); p != nil {
				return nil, errors.Join(returnedErr, p)
			}
		}
		// The error compute returned, and only that, may be its caller's
		// cancellation rather than a failure.
		c.gaveUp = callerGaveUp(c.ctx) != nil
		return nil, returnedErr
	}
	return rdr, nil
}

// failed reports err through the callback's error. A compute whose caller's
// context is done reports the context's status (CANCELLED or TIMEOUT), which
// hands the compute over to the calls waiting for it; anything else is the
// compute's failure, which every waiter shares.
func (c *computeCall) failed(cerr *C.fstore_error, err error) C.fstore_status {
	c.err = err
	status, msg := C.fstore_status(C.FSTORE_STATUS_CALLBACK_FAILED), err.Error()
	if c.gaveUp {
		why := callerGaveUp(c.ctx)
		status = C.FSTORE_STATUS_CANCELLED
		if errors.Is(why, context.DeadlineExceeded) {
			status = C.FSTORE_STATUS_TIMEOUT
		}
		msg = fmt.Sprintf("the caller's context is done (%v); compute returned: %v", why, err)
	}
	cmsg := C.CString(msg)
	defer C.free(unsafe.Pointer(cmsg))
	C.fstore_error_set(cerr, status, cmsg)
	return status
}

// callerGaveUp is the context's error, also when its deadline has passed but
// its timer has not fired yet; nil while the caller still waits.
func callerGaveUp(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// batches is a compute's reader, read to its end: the schema, the batches
// and the error it ended with, replayed to the library as a stream.
type batches struct {
	schema *arrow.Schema
	recs   []arrow.RecordBatch
	cur    arrow.RecordBatch
	err    error
}

// materialise reads rdr to its end and releases it. A panic in any of its
// methods, or a schema arrow-go cannot export, is the compute's failure.
// rdr's own error is kept, so that the library sees the stream fail where
// rdr did.
func materialise(rdr array.RecordReader) (*batches, error) {
	b := &batches{}
	err := b.read(rdr)
	if p := recovered("the compute's reader panicked in Release", rdr.Release); p != nil {
		err = errors.Join(err, p)
	}
	if err == nil && b.schema == nil {
		err = errors.New("the compute's reader has a nil schema")
	}
	if err == nil {
		err = recovered("arrow-go cannot export the compute's schema", func() { checkExportable(b.schema) })
	}
	if err != nil {
		b.release()
		return nil, err
	}
	return b, nil
}

// read takes rdr's schema, batches and final error; a panic in one of its
// methods becomes the error, naming the method.
func (b *batches) read(rdr array.RecordReader) (err error) {
	method := "Schema"
	defer func() {
		if r := recover(); r != nil {
			err = panicError("the compute's reader panicked in "+method, r)
		}
	}()
	if b.schema = rdr.Schema(); b.schema == nil {
		return nil
	}
	for method = "Next"; rdr.Next(); method = "Next" {
		method = "RecordBatch"
		rec := rdr.RecordBatch()
		if rec == nil {
			return errors.New("the compute's reader returned true from Next and a nil RecordBatch")
		}
		rec.Retain()
		b.recs = append(b.recs, rec)
	}
	method = "Err"
	b.err = rdr.Err()
	return nil
}

// checkExportable exports schema once and releases it: arrow-go panics on
// types it cannot export, which must happen here rather than in the library.
func checkExportable(schema *arrow.Schema) {
	scratch := (*cdata.CArrowSchema)(C.calloc(1, C.sizeof_struct_ArrowSchema))
	defer C.free(unsafe.Pointer(scratch))
	cdata.ExportArrowSchema(schema, scratch)
	cdata.ReleaseCArrowSchema(scratch)
}

func (b *batches) Schema() *arrow.Schema          { return b.schema }
func (b *batches) RecordBatch() arrow.RecordBatch { return b.cur }
func (b *batches) Err() error                     { return b.err }

func (b *batches) Next() bool {
	if b.cur != nil {
		b.cur.Release()
		b.cur = nil
	}
	if len(b.recs) == 0 {
		return false
	}
	b.cur, b.recs = b.recs[0], b.recs[1:]
	return true
}

func (b *batches) release() {
	for b.Next() {
	}
}
