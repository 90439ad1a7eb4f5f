package fstore_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/libfstore/libfstore/bindings/go/fstore"
)

// The per-call cost of a hit of one 252x16 float64 entry (memory cache on),
// through Get, GetOrCompute and the raw cgo call beneath them. Run with
// bench_per_call.sh, which prints medians in us/call and the ratios.

const benchRows, benchColumns = 252, 16

// benchEntry is a 252x16 float64 table, in C memory (see cAlloc).
func benchEntry() array.RecordReader {
	fields := make([]arrow.Field, benchColumns)
	for i := range fields {
		fields[i] = arrow.Field{Name: string(rune('a'+i)) + "_feature", Type: arrow.PrimitiveTypes.Float64}
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(cAlloc, schema)
	defer b.Release()
	for c := range benchColumns {
		for r := range benchRows {
			b.Field(c).(*array.Float64Builder).Append(float64(r*benchColumns + c))
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	rdr, err := array.NewRecordReader(schema, []arrow.RecordBatch{rec})
	if err != nil {
		panic(err)
	}
	return rdr
}

// benchStore is a store holding the benchmark's entry under key.
func benchStore(b *testing.B) (*fstore.Store, fstore.Key) {
	b.Helper()
	store, err := fstore.Open(fstore.WithCacheDir(b.TempDir()), fstore.WithOption("memory_cache_mb", "64"),
		fstore.WithOption("manifest", "duckdb"))
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	b.Cleanup(func() { store.Close() })
	key := testKey("PERCALL")
	rdr := benchEntry()
	defer rdr.Release()
	if err := store.Put(key, rdr); err != nil {
		b.Fatalf("Put: %v", err)
	}
	return store, key
}

func neverCompute(context.Context, fstore.Key) (array.RecordReader, error) {
	panic("a hit computed")
}

// cpuTime is the CPU time this process has used so far (every thread: the
// runtime's and the library's too).
func cpuTime(b *testing.B) time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// perCall reports wall and CPU microseconds per call of the loop that ran
// since cpuTime returned started: on a shared machine the wall clock also
// counts the time other processes hold the cores.
func reportPerCall(b *testing.B, started time.Duration) {
	b.ReportMetric(float64((cpuTime(b)-started).Nanoseconds())/float64(b.N)/1e3, "cpu-us/call")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3, "us/call")
}

func BenchmarkCgoHit(b *testing.B) {
	store, key := benchStore(b)
	hit, free, err := fstore.RawHit(store, key)
	if err != nil {
		b.Fatal(err)
	}
	defer free()
	started := cpuTime(b)
	for b.Loop() {
		if err := hit(); err != nil {
			b.Fatal(err)
		}
	}
	reportPerCall(b, started)
}

func BenchmarkGetHit(b *testing.B) {
	store, key := benchStore(b)
	ctx := context.Background()
	started := cpuTime(b)
	for b.Loop() {
		rdr, err := store.Get(ctx, key)
		if err != nil {
			b.Fatal(err)
		}
		rdr.Release()
	}
	reportPerCall(b, started)
}

func BenchmarkGetOrComputeHit(b *testing.B) {
	store, key := benchStore(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := cpuTime(b)
	for b.Loop() {
		rdr, err := store.GetOrCompute(ctx, key, neverCompute)
		if err != nil {
			b.Fatal(err)
		}
		rdr.Release()
	}
	reportPerCall(b, started)
}
