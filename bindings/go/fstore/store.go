package fstore

/*
#include <stdint.h>
#include <stdlib.h>
#include "fstore.h"

// The exported Go trampoline (compute.go); cgo declares it without const.
extern fstore_status fstoreGoCompute(void*, fstore_key*, struct ArrowArrayStream*, fstore_error*);

// The compute handle travels as an integer, so that no Go pointer is ever
// handed to C.
static fstore_status fstore_go_get_or_compute(const fstore_store* store, const fstore_key* key,
                                              const fstore_request* request, uintptr_t handle,
                                              struct ArrowArrayStream* out, fstore_error* error) {
	return fstore_store_get_or_compute(store, key, request, (fstore_compute_fn)fstoreGoCompute,
	                                   (void*)handle, out, error);
}

static struct ArrowArrayStream* fstore_go_new_stream(void) {
	return (struct ArrowArrayStream*)calloc(1, sizeof(struct ArrowArrayStream));
}
*/
import "C"

import (
	"context"
	"errors"
	"runtime"
	"runtime/cgo"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"
)

// Option configures Open. Each one sets one of the library's named options
// (fstore_options_set), which checks the value.
type Option func(*openSettings)

type openSettings struct {
	names, values []string
}

func (s *openSettings) set(name, value string) {
	s.names = append(s.names, name)
	s.values = append(s.values, value)
}

// WithCacheDir sets the cache directory (option cache_dir). Without it the
// library uses $FSTORE_CACHE_DIR, else ~/.feature_cache.
func WithCacheDir(dir string) Option {
	return func(s *openSettings) { s.set("cache_dir", dir) }
}

// LockGranularity is what one cross-process compute lock covers.
type LockGranularity string

const (
	// LockPerSymbol takes one lock per symbol (the default): the advisory
	// key of LockKey, shared with other programs that lock symbols.
	LockPerSymbol LockGranularity = "symbol"
	// LockPerEntry takes one lock per entry, so that different date ranges
	// or configs of one symbol never wait on each other.
	LockPerEntry LockGranularity = "entry"
)

// WithLockGranularity sets option lock.granularity.
func WithLockGranularity(g LockGranularity) Option {
	return func(s *openSettings) { s.set("lock.granularity", string(g)) }
}

// WithCrossProcessLock sets option lock.cross_process (default true). Off,
// only goroutines of one process share a compute.
func WithCrossProcessLock(on bool) Option {
	return func(s *openSettings) { s.set("lock.cross_process", strconv.FormatBool(on)) }
}

// WithWaitTimeout sets option wait.timeout_ms: the longest a call waits for
// another caller's compute or for a lock (default 10 minutes; 0: never wait).
// It is rounded up to whole milliseconds.
func WithWaitTimeout(d time.Duration) Option {
	return func(s *openSettings) { s.set("wait.timeout_ms", strconv.FormatInt(ceilMillis(d), 10)) }
}

// WithVerifyChecksums sets option verify_checksums (default true).
func WithVerifyChecksums(on bool) Option {
	return func(s *openSettings) { s.set("verify_checksums", strconv.FormatBool(on)) }
}

// WithOption sets the library option name to value as text, for options
// this package has no function for.
func WithOption(name, value string) Option {
	return func(s *openSettings) { s.set(name, value) }
}

func ceilMillis(d time.Duration) int64 {
	if d <= 0 {
		return d.Milliseconds()
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// Store is an open cache directory. It is safe for concurrent use; Close it
// when done (a Store left unreachable is closed by the garbage collector,
// without reporting errors). The library itself answers calls on a closed
// store (ErrInvalidState) and closes safely under calls in flight, so the
// handle needs no lock here.
type Store struct {
	ptr      *C.fstore_store // never changes: close leaves the handle answering
	cleanup  runtime.Cleanup
	warnings []string
}

// Open opens (creating if needed) the store that opts describe.
func Open(opts ...Option) (*Store, error) {
	options, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	defer C.fstore_options_free(&options)
	var ptr *C.fstore_store
	var cerr C.fstore_error
	if status := C.fstore_store_open(options, &ptr, &cerr); status != C.FSTORE_STATUS_OK {
		return nil, takeError(status, &cerr)
	}
	// The warnings are fixed at open and the library's copy lives only as
	// long as the handle: copy them now, so that no call races a Close.
	s := &Store{ptr: ptr, warnings: splitLines(C.fstore_store_warnings(ptr))}
	s.cleanup = runtime.AddCleanup(s, func(p *C.fstore_store) { C.fstore_store_close(&p) }, ptr)
	return s, nil
}

// newOptions is the library's options set from opts (each value checked
// there). The caller frees it with fstore_options_free.
func newOptions(opts []Option) (*C.fstore_options, error) {
	var settings openSettings
	for _, opt := range opts {
		opt(&settings)
	}
	options := C.fstore_options_new()
	for i, name := range settings.names {
		if err := setOption(options, name, settings.values[i]); err != nil {
			C.fstore_options_free(&options)
			return nil, err
		}
	}
	return options, nil
}

func setOption(options *C.fstore_options, name, value string) error {
	cname, err := cString("option name", name)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cname))
	cvalue, err := cString("option "+name, value)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cvalue))
	var cerr C.fstore_error
	if status := C.fstore_options_set(options, cname, cvalue, &cerr); status != C.FSTORE_STATUS_OK {
		return takeError(status, &cerr)
	}
	return nil
}

// handle is the C handle for one call. The caller keeps s alive until the
// call returns (runtime.KeepAlive), so that the garbage collector's close
// cannot cancel it.
func (s *Store) handle() *C.fstore_store { return s.ptr }

// Close flushes the manifest and closes the store, reporting a manifest
// failure. Calls in progress on other goroutines end their waits with
// ErrCanceled; a compute already running finishes and is stored first.
// Later calls return ErrInvalidState; closing again is a no-op. Called from
// a compute function, it returns at once and the store closes when that
// call returns.
func (s *Store) Close() error {
	defer runtime.KeepAlive(s)
	s.cleanup.Stop()
	var cerr C.fstore_error
	status := C.fstore_store_flush(s.ptr, &cerr)
	// A closed store names no backend: then this Close is a no-op.
	closedBefore := status == C.FSTORE_STATUS_INVALID_STATE && C.fstore_store_manifest_backend(s.ptr) == nil
	// Close through a copy: it sets the pointer it is given to NULL, and
	// s.ptr must keep naming the (closed) handle for later calls.
	ptr := s.ptr
	C.fstore_store_close(&ptr)
	if status == C.FSTORE_STATUS_OK || closedBefore {
		C.fstore_error_release(&cerr)
		return nil
	}
	return takeError(status, &cerr)
}

// CallOption configures one Get or GetOrCompute call.
type CallOption func(*callSettings)

type callSettings struct {
	columns    []string
	timeout    time.Duration
	hasTimeout bool
}

// WithColumns returns only the named columns, in that order (none: all).
func WithColumns(columns ...string) CallOption {
	return func(s *callSettings) { s.columns = columns }
}

// WithTimeout bounds how long the call waits for another caller's compute or
// for a lock, instead of the store's wait timeout (it may be longer or
// shorter). Zero means: do not wait at all; a negative value means the
// store's wait timeout. A context deadline that comes sooner bounds the wait
// too.
func WithTimeout(d time.Duration) CallOption {
	return func(s *callSettings) { s.timeout, s.hasTimeout = d, d >= 0 }
}

// request is a C request whose cancellation follows a context.
type request struct {
	mu   sync.Mutex
	c    *C.fstore_request
	stop func() bool
}

func settingsOf(opts []CallOption) callSettings {
	var settings callSettings
	for _, opt := range opts {
		opt(&settings)
	}
	return settings
}

func newRequest(ctx context.Context, settings callSettings) (*request, error) {
	r := &request{c: C.fstore_request_new()}
	if err := r.setColumns(settings.columns); err != nil {
		C.fstore_request_free(&r.c)
		return nil, err
	}
	var cerr C.fstore_error
	if settings.hasTimeout {
		if status := C.fstore_request_set_timeout_ms(r.c, C.int64_t(ceilMillis(settings.timeout)), &cerr); status != C.FSTORE_STATUS_OK {
			C.fstore_request_free(&r.c)
			return nil, takeError(status, &cerr)
		}
	}
	// The context's deadline only ever shortens the wait: a far deadline
	// must not lengthen what the store (or WithTimeout) allows. Rounded up,
	// so that the context is done by the time the library gives up.
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		left := max(ceilMillis(time.Until(deadline)), 0)
		if status := C.fstore_request_set_deadline_ms(r.c, C.int64_t(left), &cerr); status != C.FSTORE_STATUS_OK {
			C.fstore_request_free(&r.c)
			return nil, takeError(status, &cerr)
		}
	}
	r.stop = context.AfterFunc(ctx, func() {
		// The library knows the deadline and ends the wait there as a
		// timeout; cancelling as well would race it and count a cancellation.
		if hasDeadline && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		C.fstore_request_cancel(r.c) // NULL (already freed) is ignored
	})
	return r, nil
}

func (r *request) setColumns(columns []string) error {
	if len(columns) == 0 {
		return nil
	}
	ptrSize := C.size_t(unsafe.Sizeof((*C.char)(nil)))
	array := (**C.char)(C.calloc(C.size_t(len(columns)), ptrSize))
	names := unsafe.Slice(array, len(columns))
	defer func() {
		for _, p := range names {
			C.free(unsafe.Pointer(p))
		}
		C.free(unsafe.Pointer(array))
	}()
	for i, column := range columns {
		p, err := cString("column name", column)
		if err != nil {
			return err
		}
		names[i] = p
	}
	var cerr C.fstore_error
	if status := C.fstore_request_set_columns(r.c, array, C.size_t(len(columns)), &cerr); status != C.FSTORE_STATUS_OK {
		return takeError(status, &cerr)
	}
	return nil
}

func (r *request) free() {
	r.stop()
	r.mu.Lock()
	C.fstore_request_free(&r.c)
	r.mu.Unlock()
}

// contextError is the error of a call made with a context that is already done.
func contextError(ctx context.Context) error {
	if ctx == nil {
		return invalidArgument("ctx is nil")
	}
	err := ctx.Err()
	if err == nil {
		return nil
	}
	e := &Error{Status: StatusCanceled, Message: "the context was done before the call: " + err.Error(), cause: err}
	if errors.Is(err, context.DeadlineExceeded) {
		e.Status = StatusTimeout
	}
	return e
}

// blameContext makes a cancellation or timeout that the context caused
// carry the context's error, with the status that matches it: the library
// may see either the cancel or the (equal) deadline first.
func blameContext(e *Error, ctx context.Context) {
	if e.Status != StatusCanceled && e.Status != StatusTimeout {
		return
	}
	err := ctx.Err()
	if deadline, ok := ctx.Deadline(); ok && err == nil && e.Status == StatusTimeout && !time.Now().Before(deadline) {
		err = context.DeadlineExceeded // the context's timer has not fired yet
	}
	switch {
	case err == nil:
		return
	case errors.Is(err, context.DeadlineExceeded):
		e.Status = StatusTimeout
	default:
		e.Status = StatusCanceled
	}
	switch {
	case e.cause == nil:
		e.cause = err
	case !errors.Is(e.cause, err): // the compute's own error, when it gave up
		e.cause = errors.Join(err, e.cause)
	}
}

func newStream() *C.struct_ArrowArrayStream {
	return C.fstore_go_new_stream()
}

// importStream takes the stream out of *out (leaving it released) as a reader.
func importStream(out *C.struct_ArrowArrayStream) (array.RecordReader, error) {
	rdr, err := cdata.ImportCRecordReader((*cdata.CArrowArrayStream)(unsafe.Pointer(out)), nil)
	if err != nil {
		return nil, &Error{Status: StatusInvalidData, Message: "cannot import the result stream: " + err.Error(), cause: err}
	}
	return rdr.(array.RecordReader), nil
}

// ComputeFunc computes the data of key. It returns a reader that the store
// takes over (and releases), or an error. It runs on the goroutine that
// called GetOrCompute, with that call's context. A panic in it, or in the
// reader it returns, fails the call; runtime.Goexit (t.FailNow, t.Fatal)
// must not be called in it: it cannot leave a call from C, so it ends the
// process. Build the records with a C allocator (see Memory in the package
// documentation).
type ComputeFunc func(ctx context.Context, key Key) (array.RecordReader, error)

// GetOrCompute returns the data of key, running compute first if the store
// has none. Exactly one caller per entry, across goroutines and processes
// sharing the cache directory, runs its compute; the others wait (bounded by
// the store's wait timeout, or WithTimeout, and by the context's deadline;
// ended by cancelling ctx) and get the same data, or the same error: a
// failed compute stores nothing, and the next call computes again.
//
// A compute that returns an error or panics (in itself or in any method of
// the reader it returns) fails the call with ErrCallbackFailed (errors.Is
// also finds the compute's own error, for the caller whose compute it was);
// one that returns a nil reader and no error fails it with ErrInvalidData.
// A compute that returns an error once its own ctx is done is not a failure
// but its caller giving up: that call returns ErrCanceled (or ErrTimeout for
// a deadline), and one of the calls waiting for the entry computes it
// instead. The caller releases the returned reader.
func (s *Store) GetOrCompute(ctx context.Context, key Key, compute ComputeFunc, opts ...CallOption) (array.RecordReader, error) {
	if err := contextError(ctx); err != nil {
		return nil, err
	}
	if compute == nil {
		return nil, invalidArgument("compute is nil")
	}
	defer runtime.KeepAlive(s)
	store := s.handle()
	ckey, err := key.toC()
	if err != nil {
		return nil, err
	}
	defer ckey.free()
	settings := settingsOf(opts)
	// A hit needs none of what a wait or a compute does (a request that
	// follows the context, a handle for the callback): look first.
	if rdr, err := tryGet(store, ckey, settings.columns); rdr != nil || err != nil {
		return rdr, err
	}
	req, err := newRequest(ctx, settings)
	if err != nil {
		return nil, err
	}
	defer req.free()

	call := &computeCall{ctx: ctx, key: key, fn: compute}
	handle := cgo.NewHandle(call)
	defer handle.Delete()
	out := newStream()
	defer C.free(unsafe.Pointer(out))
	var cerr C.fstore_error
	status := C.fstore_go_get_or_compute(store, &ckey.c, req.c, C.uintptr_t(handle), out, &cerr)
	if status != C.FSTORE_STATUS_OK {
		e := takeError(status, &cerr)
		switch {
		case call.err != nil && (e.Status == StatusCallbackFailed || call.gaveUp):
			e.cause = call.err
		case e.Status == StatusInvalidData && call.nilReader:
			e.Message = "compute returned a nil array.RecordReader and a nil error: " + e.Message
		case e.Status == StatusInvalidData && call.stream != nil && call.stream.err != nil:
			e.cause = call.stream.err
		}
		blameContext(e, ctx)
		return nil, e
	}
	return importStream(out)
}

// tryGet is GetOrCompute's first look (fstore_store_try_get): the entry, or
// a nil reader and no error when the call must wait or compute.
func tryGet(store *C.fstore_store, ckey *cKey, columns []string) (array.RecordReader, error) {
	return read(store, ckey, columns, true)
}

// read is a call that never waits, fstore_store_try_get (try) or
// fstore_store_get, so it needs neither the context nor a timeout: only a
// projection, if any. A try that finds nothing returns no reader and no error.
func read(store *C.fstore_store, ckey *cKey, columns []string, try bool) (array.RecordReader, error) {
	var creq *C.fstore_request
	if len(columns) > 0 {
		r := &request{c: C.fstore_request_new()}
		defer C.fstore_request_free(&r.c)
		if err := r.setColumns(columns); err != nil {
			return nil, err
		}
		creq = r.c
	}
	out := newStream()
	defer C.free(unsafe.Pointer(out))
	var cerr C.fstore_error
	var status C.fstore_status
	if try {
		status = C.fstore_store_try_get(store, &ckey.c, creq, out, &cerr)
	} else {
		status = C.fstore_store_get(store, &ckey.c, creq, out, &cerr)
	}
	switch {
	case status == C.FSTORE_STATUS_OK:
		return importStream(out)
	case status == C.FSTORE_STATUS_NOT_FOUND && try:
		C.fstore_error_release(&cerr)
		return nil, nil
	default:
		return nil, takeError(status, &cerr)
	}
}

// Get returns the stored data of key, or an error matching ErrNotFound. It
// never computes and never waits. The caller releases the returned reader.
func (s *Store) Get(ctx context.Context, key Key, opts ...CallOption) (array.RecordReader, error) {
	if err := contextError(ctx); err != nil {
		return nil, err
	}
	defer runtime.KeepAlive(s)
	store := s.handle()
	ckey, err := key.toC()
	if err != nil {
		return nil, err
	}
	defer ckey.free()
	return read(store, ckey, settingsOf(opts).columns, false)
}

// Put stores the data of rdr as the entry of key, replacing any. It reads
// rdr to its end; the caller keeps its own reference and releases it. A
// panic in one of rdr's methods fails Put with ErrInvalidData (errors.Is
// finds the panic's error, or rdr's own). Build the records with a C
// allocator (see Memory in the package documentation).
func (s *Store) Put(key Key, rdr array.RecordReader) error {
	if rdr == nil {
		return invalidArgument("reader is nil")
	}
	defer runtime.KeepAlive(s)
	store := s.handle()
	ckey, err := key.toC()
	if err != nil {
		return err
	}
	defer ckey.free()

	in := newStream()
	defer C.free(unsafe.Pointer(in))
	// rdr is borrowed: the library releases the stream before it returns.
	stream := exportStream(rdr, nil, in)
	var cerr C.fstore_error
	status := C.fstore_store_put(store, &ckey.c, in, &cerr)
	releaseStream(in) // a no-op: the library takes the stream over in every case
	runtime.KeepAlive(rdr)
	if status != C.FSTORE_STATUS_OK {
		e := takeError(status, &cerr)
		if e.Status == StatusInvalidData && stream.err != nil {
			e.cause = stream.err
		}
		return e
	}
	return nil
}

// Invalidate removes the entry of key and reports whether there was one.
func (s *Store) Invalidate(key Key) (bool, error) {
	defer runtime.KeepAlive(s)
	store := s.handle()
	ckey, err := key.toC()
	if err != nil {
		return false, err
	}
	defer ckey.free()
	var cerr C.fstore_error
	switch status := C.fstore_store_invalidate(store, &ckey.c, &cerr); status {
	case C.FSTORE_STATUS_OK:
		return true, nil
	case C.FSTORE_STATUS_NOT_FOUND:
		C.fstore_error_release(&cerr)
		return false, nil
	default:
		return false, takeError(status, &cerr)
	}
}

// Contains reports whether a complete entry of key exists.
func (s *Store) Contains(key Key) (bool, error) {
	defer runtime.KeepAlive(s)
	store := s.handle()
	ckey, err := key.toC()
	if err != nil {
		return false, err
	}
	defer ckey.free()
	var out C.bool
	var cerr C.fstore_error
	if status := C.fstore_store_contains(store, &ckey.c, &out, &cerr); status != C.FSTORE_STATUS_OK {
		return false, takeError(status, &cerr)
	}
	return bool(out), nil
}

// Stats are the store's counters since it was opened.
type Stats struct {
	Hits            uint64 // calls answered from an existing entry without waiting
	Misses          uint64 // calls that found no entry at first look
	Computes        uint64 // compute functions run
	ComputeFailures uint64 // computes that failed or produced invalid data
	Waits           uint64 // calls that waited for another caller's compute
	Timeouts        uint64 // calls that gave up waiting
	Cancellations   uint64 // calls cancelled while waiting
	BytesWritten    uint64
	BytesRead       uint64
}

// Stats returns the store's counters.
func (s *Store) Stats() (Stats, error) {
	defer runtime.KeepAlive(s)
	store := s.handle()
	var out C.fstore_stats
	var cerr C.fstore_error
	if status := C.fstore_store_stats(store, &out, C.size_t(unsafe.Sizeof(out)), &cerr); status != C.FSTORE_STATUS_OK {
		return Stats{}, takeError(status, &cerr)
	}
	return Stats{
		Hits:            uint64(out.hits),
		Misses:          uint64(out.misses),
		Computes:        uint64(out.computes),
		ComputeFailures: uint64(out.compute_failures),
		Waits:           uint64(out.waits),
		Timeouts:        uint64(out.timeouts),
		Cancellations:   uint64(out.cancellations),
		BytesWritten:    uint64(out.bytes_written),
		BytesRead:       uint64(out.bytes_read),
	}, nil
}

// Metrics renders the store's metrics in the Prometheus text exposition
// format (0.0.4): the featurestore_* series (hits, misses and waits per
// symbol, computes and latency histograms per feature set, errors per
// status, memory cache, pool and advisory-lock gauges). Serve it from a
// /metrics handler.
func (s *Store) Metrics() (string, error) {
	defer runtime.KeepAlive(s)
	var text *C.char
	var cerr C.fstore_error
	if status := C.fstore_store_metrics(s.handle(), &text, &cerr); status != C.FSTORE_STATUS_OK {
		return "", takeError(status, &cerr)
	}
	defer C.fstore_string_free(&text)
	return C.GoString(text), nil
}

// Entries returns the manifest, one row per entry (entry_id, feature_set,
// symbol, start_date, end_date, config, path, rows, bytes, checksum,
// created_at). The caller releases the reader.
func (s *Store) Entries() (array.RecordReader, error) {
	defer runtime.KeepAlive(s)
	store := s.handle()
	out := newStream()
	defer C.free(unsafe.Pointer(out))
	var cerr C.fstore_error
	if status := C.fstore_store_list(store, out, &cerr); status != C.FSTORE_STATUS_OK {
		return nil, takeError(status, &cerr)
	}
	return importStream(out)
}

// Summary returns the cache's inventory, one row per feature set and
// symbol: feature_set, symbol (utf8), entries, rows, bytes (uint64), oldest,
// newest (timestamp[us, UTC], when entries were created). The caller
// releases the reader.
func (s *Store) Summary() (array.RecordReader, error) {
	defer runtime.KeepAlive(s)
	store := s.handle()
	out := newStream()
	defer C.free(unsafe.Pointer(out))
	var cerr C.fstore_error
	if status := C.fstore_store_summary(store, out, &cerr); status != C.FSTORE_STATUS_OK {
		return nil, takeError(status, &cerr)
	}
	return importStream(out)
}

// Flush waits until the manifest records every entry published so far and
// reports a manifest failure since the last flush.
func (s *Store) Flush() error {
	defer runtime.KeepAlive(s)
	store := s.handle()
	var cerr C.fstore_error
	if status := C.fstore_store_flush(store, &cerr); status != C.FSTORE_STATUS_OK {
		return takeError(status, &cerr)
	}
	return nil
}

// ManifestBackend names the manifest backend in use ("postgres" or
// "duckdb"); "" once the store is closed.
func (s *Store) ManifestBackend() string {
	defer runtime.KeepAlive(s)
	return C.GoString(C.fstore_store_manifest_backend(s.handle())) // NULL once closed
}

// Warnings are what the library warned about while opening the store, one
// line each, such as a fallback from PostgreSQL to the embedded manifest
// (manifest=auto with an unreachable server) and why; nil when there were
// none. They are also logged (see SetLogger) when the log level lets them
// through. They stay readable after Close.
func (s *Store) Warnings() []string {
	return slices.Clone(s.warnings)
}

// splitLines copies the library's newline-separated text (NULL: none).
func splitLines(text *C.char) []string {
	if text == nil {
		return nil
	}
	return strings.Split(strings.TrimSuffix(C.GoString(text), "\n"), "\n")
}
