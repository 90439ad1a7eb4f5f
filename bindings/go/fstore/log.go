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
// the FSTORE_LOG environment variable (warn by default).
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
