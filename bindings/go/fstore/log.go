package fstore

// #include "fstore.h"
import "C"

import (
	"context"
	"log/slog"
	"sync/atomic"
	"unsafe"
)

// The library's log lines (such as a fallback from PostgreSQL to the
// embedded manifest, and why) go to a slog.Logger: slog.Default() unless
// SetLogger names another. Which lines the library emits at all is set by
// SetLogLevel, else the FSTORE_LOG environment variable (warn by default).
var logger atomic.Pointer[slog.Logger]

func init() { routeLogsToGo() }

// SetLogger sends the library's log lines to l; nil restores slog.Default().
func SetLogger(l *slog.Logger) { logger.Store(l) }

//export fstoreGoLog
func fstoreGoLog(_ unsafe.Pointer, level C.fstore_log_level, message *C.char) {
	l := logger.Load()
	if l == nil {
		l = slog.Default()
	}
	l.Log(context.Background(), slogLevel(level), C.GoString(message), "source", "libfstore")
}

func slogLevel(level C.fstore_log_level) slog.Level {
	switch level {
	case C.FSTORE_LOG_ERROR:
		return slog.LevelError
	case C.FSTORE_LOG_WARN:
		return slog.LevelWarn
	case C.FSTORE_LOG_INFO:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

// LogLevel is how much the library logs: LogOff to LogTrace, in order of
// detail.
type LogLevel uint32

// The library's log levels (FSTORE_LOG_*).
const (
	LogOff   LogLevel = C.FSTORE_LOG_OFF
	LogError LogLevel = C.FSTORE_LOG_ERROR
	LogWarn  LogLevel = C.FSTORE_LOG_WARN
	LogInfo  LogLevel = C.FSTORE_LOG_INFO
	LogDebug LogLevel = C.FSTORE_LOG_DEBUG
	LogTrace LogLevel = C.FSTORE_LOG_TRACE
)

// SetLogLevel makes the library log only lines at level or more severe
// (LogOff: none), for the whole process, overriding FSTORE_LOG. A level
// the library does not know is refused (ErrInvalidArgument).
func SetLogLevel(level LogLevel) error {
	var cerr C.fstore_error
	if status := C.fstore_log_set_level(C.fstore_log_level(level), &cerr); status != C.FSTORE_STATUS_OK {
		return takeError(status, &cerr)
	}
	return nil
}
