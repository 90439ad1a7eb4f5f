package fstore

/*
#include <stdlib.h>
*/
import "C"

import (
	"fmt"
	"os"
	"runtime/debug"
)

// crashOnEscape ends the process when a panic or runtime.Goexit is about to
// leave a function that C called. Go would unwind straight past libfstore's
// frames without running their cleanup: the entry would stay in flight and
// its lock held, so every later call of that key would wait until it timed
// out. Every function C calls recovers its own panics; this is the last line
// behind that. Defer it first, and set *returned just before returning.
func crashOnEscape(where string, returned *bool) {
	r := recover()
	if r == nil && *returned {
		return
	}
	what := "runtime.Goexit (t.FailNow, t.Fatal, ...)"
	if r != nil {
		what = fmt.Sprintf("a panic (%v)", r)
	}
	fmt.Fprintf(os.Stderr, "fstore: %s is leaving %s, which libfstore called: aborting, since unwinding through the library would skip its cleanup\n%s", what, where, debug.Stack())
	C.abort()
}

// panicError is the error a recovered panic becomes; what says who
// panicked where ("compute panicked").
func panicError(what string, r any) error {
	if err, ok := r.(error); ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %v", what, r)
}

// recovered runs fn and returns the panic it raised, if any, as an error.
func recovered(what string, fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = panicError(what, r)
		}
	}()
	fn()
	return nil
}
