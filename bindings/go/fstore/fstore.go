package fstore

/*
#include <stdlib.h>
#include "fstore.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// Status is the class of a failure, one of the library's fstore_status codes.
type Status uint32

// The library's status codes (FSTORE_STATUS_*).
const (
	StatusOK              Status = C.FSTORE_STATUS_OK
	StatusInvalidArgument Status = C.FSTORE_STATUS_INVALID_ARGUMENT
	StatusNotFound        Status = C.FSTORE_STATUS_NOT_FOUND
	StatusTimeout         Status = C.FSTORE_STATUS_TIMEOUT
	StatusCanceled        Status = C.FSTORE_STATUS_CANCELLED
	StatusCallbackFailed  Status = C.FSTORE_STATUS_CALLBACK_FAILED
	StatusInvalidData     Status = C.FSTORE_STATUS_INVALID_DATA
	StatusIO              Status = C.FSTORE_STATUS_IO
	StatusDatabase        Status = C.FSTORE_STATUS_DATABASE
	StatusCorrupt         Status = C.FSTORE_STATUS_CORRUPT
	StatusInvalidState    Status = C.FSTORE_STATUS_INVALID_STATE
	StatusUnavailable     Status = C.FSTORE_STATUS_UNAVAILABLE
	StatusInternal        Status = C.FSTORE_STATUS_INTERNAL
	// StatusPermissionDenied: the cache directory is unsafe, another user
	// could write it; the message names the path and the fix.
	StatusPermissionDenied Status = C.FSTORE_STATUS_PERMISSION_DENIED
)

// String is the library's short English name of the status, e.g. "timeout".
func (s Status) String() string {
	return C.GoString(C.fstore_status_name(C.fstore_status(s)))
}

// Error is a failure reported by libfstore: its status and the library's
// message, which names the input at fault.
type Error struct {
	Status  Status
	Message string
	// Sqlstate is the five-character SQLSTATE of the PostgreSQL error behind
	// this one (e.g. "28P01" for a rejected password, "55P03" for a lock
	// wait that timed out); "" when there was none.
	Sqlstate string
	// cause is the Go error behind this one, if any: the context's error for
	// a cancelled or timed-out call, or what the compute function returned.
	cause error
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "fstore: " + e.Status.String()
	}
	return "fstore: " + e.Status.String() + ": " + e.Message
}

// Is reports whether target is the sentinel of e's status, so that
// errors.Is(err, ErrTimeout) holds for every timeout.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.cause == nil && t.Status == e.Status
}

// Unwrap returns the Go error behind e: the context's error when the call
// ended because its context was done, the compute function's error (or the
// panic) for the caller whose compute failed; nil otherwise.
func (e *Error) Unwrap() error { return e.cause }

// Sentinels for errors.Is, one per status.
var (
	ErrInvalidArgument  = &Error{Status: StatusInvalidArgument}
	ErrNotFound         = &Error{Status: StatusNotFound}
	ErrTimeout          = &Error{Status: StatusTimeout}
	ErrCanceled         = &Error{Status: StatusCanceled}
	ErrCallbackFailed   = &Error{Status: StatusCallbackFailed}
	ErrInvalidData      = &Error{Status: StatusInvalidData}
	ErrIO               = &Error{Status: StatusIO}
	ErrDatabase         = &Error{Status: StatusDatabase}
	ErrCorrupt          = &Error{Status: StatusCorrupt}
	ErrInvalidState     = &Error{Status: StatusInvalidState}
	ErrUnavailable      = &Error{Status: StatusUnavailable}
	ErrInternal         = &Error{Status: StatusInternal}
	ErrPermissionDenied = &Error{Status: StatusPermissionDenied}
)

// takeError turns a failed call's status and error struct into an *Error and
// releases the struct.
func takeError(status C.fstore_status, cerr *C.fstore_error) *Error {
	e := &Error{Status: Status(status)}
	if cerr.message != nil {
		e.Message = C.GoString(cerr.message)
	}
	e.Sqlstate = C.GoString(&cerr.sqlstate[0])
	C.fstore_error_release(cerr)
	return e
}

func invalidArgument(format string, args ...any) *Error {
	return &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// cString converts s for C, refusing NUL bytes, which C would silently cut
// the string at. Free the result with C.free.
func cString(what, s string) (*C.char, error) {
	if err := checkNoNUL(what, s); err != nil {
		return nil, err
	}
	return C.CString(s), nil
}

// checkNoNUL refuses text that a C string cannot hold.
func checkNoNUL(what, s string) error {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return invalidArgument("%s contains a NUL byte (at byte %d)", what, i)
	}
	return nil
}

// Version is the version of the libfstore the program runs with, e.g. "0.1.0".
func Version() string {
	return C.GoString(C.fstore_version())
}

// HeaderVersionNumber is the version of the header this package was built
// with (FSTORE_VERSION_NUMBER): major*1000000 + minor*1000 + patch.
const HeaderVersionNumber = C.FSTORE_VERSION_NUMBER

// VersionNumber is the version of the libfstore the program runs with, as
// major*1000000 + minor*1000 + patch. The library is compatible with this
// package when the major versions match and VersionNumber is not lower than
// HeaderVersionNumber.
func VersionNumber() uint32 {
	return uint32(C.fstore_version_number())
}

// LockKey is the advisory lock key of symbol, as libfstore computes it: the
// first 8 bytes of SHA-256 over its UTF-8 bytes as a big-endian signed 64-bit
// integer. Programs outside libfstore that lock the same symbols (for
// instance with PostgreSQL's pg_advisory_lock) use the same value.
func LockKey(symbol string) (int64, error) {
	csym, err := cString("symbol", symbol)
	if err != nil {
		return 0, err
	}
	defer C.free(unsafe.Pointer(csym))
	var out C.int64_t
	var cerr C.fstore_error
	if status := C.fstore_lock_key(csym, &out, &cerr); status != C.FSTORE_STATUS_OK {
		return 0, takeError(status, &cerr)
	}
	return int64(out), nil
}
