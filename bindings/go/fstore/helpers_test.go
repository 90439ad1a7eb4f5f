package fstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/arrow/memory/mallocator"

	"github.com/libfstore/libfstore/bindings/go/fstore"
)

func TestMain(m *testing.M) {
	// The cross-process test re-executes this binary as a worker.
	switch os.Getenv(helperEnv) {
	case "":
	case goexitWorker:
		os.Exit(runGoexitProcess())
	default:
		os.Exit(runHelperProcess())
	}
	os.Exit(m.Run())
}

// cAlloc allocates the data handed to the store in C memory: arrow-go
// exports buffers without copying, and C may hold Go memory only for the
// length of a call (cgo's rule, checked with GOEXPERIMENT=cgocheck2).
var cAlloc = mallocator.NewMallocator()

func date(y int, m time.Month, d int) time.Time {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func testKey(symbol string) fstore.Key {
	return fstore.Key{
		FeatureSet: "go-binding-test",
		Symbol:     symbol,
		Start:      date(2024, 1, 2),
		End:        date(2024, 3, 28),
		Config:     `{"window": 20, "kind": "sma"}`,
	}
}

func openStore(t *testing.T, opts ...fstore.Option) *fstore.Store {
	t.Helper()
	// A directory the library creates, private as a new cache's is
	// (t.TempDir's own follows the umask: 0755 gets a warning).
	cache := filepath.Join(t.TempDir(), "cache")
	store, err := fstore.Open(append([]fstore.Option{fstore.WithCacheDir(cache)}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return store
}

var sampleSchema = arrow.NewSchema([]arrow.Field{
	{Name: "day", Type: arrow.FixedWidthTypes.Date32},
	{Name: "price", Type: arrow.PrimitiveTypes.Float64},
	{Name: "tag", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// sample is a reader over rows rows in two batches; tag marks who made it.
func sample(mem memory.Allocator, rows int, tag string) array.RecordReader {
	var batches []arrow.RecordBatch
	b := array.NewRecordBuilder(mem, sampleSchema)
	defer b.Release()
	for start := 0; start < rows; start += (rows + 1) / 2 {
		for i := start; i < min(rows, start+(rows+1)/2); i++ {
			b.Field(0).(*array.Date32Builder).Append(arrow.Date32(19724 + i))
			b.Field(1).(*array.Float64Builder).Append(100 + float64(i)/4)
			if i%5 == 4 {
				b.Field(2).(*array.StringBuilder).AppendNull()
			} else {
				b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("%s-%d", tag, i))
			}
		}
		batches = append(batches, b.NewRecordBatch())
	}
	rdr, err := array.NewRecordReader(sampleSchema, batches)
	if err != nil {
		panic(err)
	}
	for _, batch := range batches {
		batch.Release()
	}
	return rdr
}

// table reads rdr to its end (releasing it) as column names and rows of text.
func table(t *testing.T, rdr array.RecordReader) (columns []string, rows []string) {
	t.Helper()
	defer rdr.Release()
	for _, f := range rdr.Schema().Fields() {
		columns = append(columns, f.Name+":"+f.Type.String())
	}
	for rdr.Next() {
		rec := rdr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			var cells []string
			for _, col := range rec.Columns() {
				cells = append(cells, col.ValueStr(i))
			}
			rows = append(rows, strings.Join(cells, "|"))
		}
	}
	if err := rdr.Err(); err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	return columns, rows
}

func sameTable(t *testing.T, what string, gotCols, gotRows, wantCols, wantRows []string) {
	t.Helper()
	if strings.Join(gotCols, ",") != strings.Join(wantCols, ",") {
		t.Fatalf("%s: columns %v, want %v", what, gotCols, wantCols)
	}
	if strings.Join(gotRows, "\n") != strings.Join(wantRows, "\n") {
		t.Fatalf("%s: rows differ:\n%v\nwant\n%v", what, gotRows, wantRows)
	}
}

// expected is the table of sample(rows, tag).
func expected(t *testing.T, rows int, tag string) ([]string, []string) {
	t.Helper()
	return table(t, sample(cAlloc, rows, tag))
}

func computeSample(rows int, tag string) fstore.ComputeFunc {
	return func(context.Context, fstore.Key) (array.RecordReader, error) {
		return sample(cAlloc, rows, tag), nil
	}
}

func mustStats(t *testing.T, s *fstore.Store) fstore.Stats {
	t.Helper()
	st, err := s.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st
}

// wantError checks err's class and that its message says what it should.
func wantError(t *testing.T, err error, sentinel error, contains string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %q does not match %v", err, sentinel)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not say %q", err, contains)
	}
}

// postgresOptions are the options of a store on the test PostgreSQL server
// (FSTORE_TEST_PG_DSN, which run_tests.sh always sets) in a schema of this
// run's own; the test is skipped without a server.
func postgresOptions(t *testing.T, schema string) []fstore.Option {
	t.Helper()
	dsn := os.Getenv("FSTORE_TEST_PG_DSN")
	if dsn == "" {
		t.Skip("set FSTORE_TEST_PG_DSN to a PostgreSQL server (run_tests.sh starts one)")
	}
	// New to this process, so that a rerun starts empty; run_tests.sh drops
	// the schemas that start with its prefix.
	prefix := os.Getenv("FSTORE_TEST_PG_SCHEMA")
	if prefix == "" {
		prefix = "go_test"
	}
	return []fstore.Option{
		fstore.WithOption("manifest", "postgres"),
		fstore.WithOption("postgres.dsn", dsn),
		fstore.WithOption("postgres.schema", fmt.Sprintf("%s_%d_%s", prefix, os.Getpid(), schema)),
	}
}

// clearPostgresEnv hides the PostgreSQL settings the library would read
// from the environment, so that only a test's options name a server.
func clearPostgresEnv(t *testing.T) {
	for _, name := range []string{"PG_MANIFEST_DSN", "PG_HOST", "PG_PORT", "PG_DATABASE", "PG_USER", "PG_PASSWORD"} {
		t.Setenv(name, "")
	}
}
