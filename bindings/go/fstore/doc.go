// Package fstore is the Go binding of libfstore, a feature cache for ML
// training fleets: many workers ask for the same (feature set, symbol, date
// range, config) data, exactly one of them computes it, and every other one,
// in the same process or another process sharing the cache directory, waits
// and reads the stored result.
//
// The binding is thin: it converts Go values to the C API of libfstore
// (include/fstore.h) and delegates every decision to the library. Data moves
// as Arrow record streams through the Arrow C stream interface, using
// arrow-go's cdata package, so results are [array.RecordReader] values.
//
//	store, err := fstore.Open(fstore.WithCacheDir("/data/feature_cache"))
//	if err != nil { ... }
//	defer store.Close()
//
//	key := fstore.Key{
//		FeatureSet: "returns",
//		Symbol:     "AAPL",
//		Start:      time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC),
//		End:        time.Date(2024, 6, 28, 0, 0, 0, 0, time.UTC),
//		Config:     `{"window": 20}`,
//	}
//	rdr, err := store.GetOrCompute(ctx, key, func(ctx context.Context, key fstore.Key) (array.RecordReader, error) {
//		return computeReturns(ctx, key) // runs once per entry across the fleet
//	}, fstore.WithColumns("date", "ret"))
//	if err != nil { ... }
//	defer rdr.Release()
//
// # Dates
//
// [Key.Start] and [Key.End] are [time.Time] values of which only the calendar
// date counts, read in the time's own location: 2024-01-02 23:30 in
// America/New_York is the day 2024-01-02. The library stores days since
// 1970-01-01 (Arrow date32). The zero time.Time is refused, so that a
// forgotten field is an error rather than the year 1.
//
// # Errors
//
// Every failure of the library is an [*Error] carrying the library's status
// and message. Compare with the sentinels through [errors.Is]
// (errors.Is(err, fstore.ErrNotFound)) or read the fields through
// [errors.As]; [Error.Sqlstate] holds the SQLSTATE of a PostgreSQL failure.
// A store that is closed answers every call with [ErrInvalidState]. When a call ends because its context was cancelled or ran
// past its deadline, the error also matches [context.Canceled] or
// [context.DeadlineExceeded].
//
// # Contexts and cancellation
//
// A call that may wait for another caller's compute watches its context: a
// cancelled context ends the wait at once (the other caller's compute goes on
// and stores its result), and a deadline can only shorten the wait, never
// lengthen the store's wait timeout (or [WithTimeout]'s).
// A compute already running is never interrupted by the library; it gets the
// context so that it can stop itself. When it does, returning an error once
// its context is done, its caller gets [ErrCanceled] (or [ErrTimeout]) and one
// of the calls waiting for the same entry computes it instead: one caller
// giving up does not fail the others.
//
// # Panics
//
// Code of yours that the library calls back, the compute function and the
// methods of the readers handed to it (returned by a compute, or given to
// [Store.Put]), never panics through the library: a panic fails the call
// with [ErrCallbackFailed] (compute) or [ErrInvalidData] (Put), and the
// store goes on. [runtime.Goexit] (t.FailNow) cannot be stopped, so it ends
// the process with a message instead of unwinding through the library.
//
// # Memory
//
// Data leaves Go without a copy: arrow-go exports the buffers of the records
// that a compute function or Put hands over, and the library reads them from
// C. cgo allows C to hold Go memory only for the length of a call, so build
// such records with a C allocator, arrow-go's memory/mallocator
// (mallocator.NewMallocator()). Records in Go memory work with Go's default
// checks but fail the strict ones (GOEXPERIMENT=cgocheck2); see arrow-go
// issue 70. Readers this package returns hold C memory and must be released.
//
// # Building and linking
//
// The package uses cgo. It carries its own copy of the header fstore.h and
// needs the library libfstore (shared or static). By default it takes the
// compiler and linker flags from pkg-config's package fstore, which
// libfstore's install writes:
//
//	PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig go build ./...
//
// For a library that is not installed, such as a cargo target directory,
// build with the tag fstore_nopkgconfig and give the directory through the
// environment:
//
//	CGO_LDFLAGS="-L$DIR -Wl,-rpath,$DIR" go build -tags fstore_nopkgconfig ./...
//
// Linking the static libfstore.a also needs the system libraries its Rust
// and C++ parts use (pkg-config's Libs.private, or e.g. -lstdc++ -lm -ldl
// -lpthread).
//
// # Threads and processes
//
// A [*Store] is safe for concurrent use by many goroutines. The compute
// function runs on the goroutine that called [Store.GetOrCompute]. A store
// must not be used in a process other than the one that opened it (Go does
// not fork without exec, so this concerns only foreign code).
//
// # Operating a cache
//
// [Store.Metrics] renders the Prometheus text format; the module
// github.com/libfstore/libfstore/bindings/go/fstore/prometheus (package
// fstoreprom) turns it into a client_golang Collector, kept apart so that
// this module does not depend on client_golang. [Store.Warnings],
// [Store.PoolStats], [Store.LockStats], [Store.Summary] and
// [Store.Entries] describe a store; [Store.Maintain], [MigrateSchema] and
// [MigrateManifest] change a cache directory, as the fstore command does.
package fstore
