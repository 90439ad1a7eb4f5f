package fstore_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/libfstore/libfstore/bindings/go/fstore"
)

// entryPaths lists the manifest: each entry's symbol and file path.
func entryPaths(t *testing.T, store *fstore.Store) map[string]string {
	t.Helper()
	if err := store.Flush(); err != nil {
		t.Fatal(err)
	}
	rdr, err := store.Entries()
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	out := map[string]string{}
	for rdr.Next() {
		rec := rdr.RecordBatch()
		symbols := rec.Column(rec.Schema().FieldIndices("symbol")[0]).(*array.String)
		paths := rec.Column(rec.Schema().FieldIndices("path")[0]).(*array.String)
		for i := 0; i < symbols.Len(); i++ {
			// The values live in the stream's C memory: copy them.
			out[strings.Clone(symbols.Value(i))] = strings.Clone(paths.Value(i))
		}
	}
	return out
}

// maintain runs Maintain and returns its report but for LockFiles: the
// lock files of the entries' computes, which nobody holds once they are done,
// go at every pass.
func maintain(t *testing.T, store *fstore.Store, opts *fstore.MaintainOptions) fstore.MaintainReport {
	t.Helper()
	report, err := store.Maintain(opts)
	if err != nil {
		t.Fatalf("Maintain(%+v): %v", opts, err)
	}
	report.LockFiles = 0
	return report
}

func fileSize(t *testing.T, path string) uint64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(info.Size())
}

func TestMaintainRemovesWhatItReports(t *testing.T) {
	dir := t.TempDir()
	store := openStore(t, fstore.WithCacheDir(dir))
	for _, symbol := range []string{"BACK", "BAD", "OLD"} {
		if err := store.Put(testKey(symbol), sample(cAlloc, 4, symbol)); err != nil {
			t.Fatal(err)
		}
	}
	// The defaults on a clean cache: only the puts' lock files, unheld.
	got, err := store.Maintain(nil)
	if err != nil || got.LockFiles == 0 || got != (fstore.MaintainReport{LockFiles: got.LockFiles}) {
		t.Fatalf("Maintain(nil) on a clean cache: %+v, %v; want only lock files", got, err)
	}

	// Files moved away behind the store's back: their rows go, counted
	// first by a dry run that changes nothing.
	paths := entryPaths(t, store)
	aside := t.TempDir()
	for _, symbol := range []string{"BACK", "BAD"} {
		if err := os.Rename(filepath.Join(dir, paths[symbol]), filepath.Join(aside, symbol)); err != nil {
			t.Fatal(err)
		}
	}
	noGrace := fstore.MaintainOptions{DryRun: true}
	if got := maintain(t, store, &noGrace); got != (fstore.MaintainReport{RowsWithoutFile: 2}) {
		t.Fatalf("dry run: %+v, want two rows without file", got)
	}
	if got := len(entryPaths(t, store)); got != 3 {
		t.Fatalf("the dry run changed the manifest: %d entries", got)
	}
	noGrace.DryRun = false // MaxAge zero: nothing expires
	if got := maintain(t, store, &noGrace); got != (fstore.MaintainReport{RowsWithoutFile: 2}) {
		t.Fatalf("Maintain: %+v, want two rows without file", got)
	}
	if got := entryPaths(t, store); len(got) != 1 || got["OLD"] == "" {
		t.Fatalf("the manifest after maintenance: %v", got)
	}

	// Back without rows: a sound file is indexed again, a truncated one
	// removed, and so is a writer's stale temporary file.
	if err := os.Rename(filepath.Join(aside, "BACK"), filepath.Join(dir, paths["BACK"])); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, paths["BAD"])
	if err := os.Rename(filepath.Join(aside, "BAD"), bad); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(bad, int64(fileSize(t, bad)/2)); err != nil {
		t.Fatal(err)
	}
	temp := filepath.Join(filepath.Dir(filepath.Join(dir, paths["OLD"])), "writer-died.tmp")
	if err := os.WriteFile(temp, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := fstore.MaintainReport{ReindexedFiles: 1, CorruptFiles: 1, TempFiles: 1, BytesFreed: fileSize(t, bad) + 7}
	if got := maintain(t, store, &noGrace); got != want {
		t.Fatalf("Maintain: %+v, want %+v", got, want)
	}
	if got := entryPaths(t, store); len(got) != 2 || got["BACK"] != paths["BACK"] || got["OLD"] == "" {
		t.Fatalf("the manifest after re-indexing: %v", got)
	}

	// Expiry: entries created longer ago than MaxAge go, files and rows.
	freed := fileSize(t, filepath.Join(dir, paths["BACK"])) + fileSize(t, filepath.Join(dir, paths["OLD"]))
	time.Sleep(20 * time.Millisecond)
	got = maintain(t, store, &fstore.MaintainOptions{MaxAge: 10 * time.Millisecond})
	if got != (fstore.MaintainReport{ExpiredEntries: 2, BytesFreed: freed}) {
		t.Fatalf("expiry: %+v, want two entries of %d bytes", got, freed)
	}
	if present, err := store.Contains(testKey("OLD")); err != nil || present {
		t.Fatalf("Contains after expiry: %v, %v", present, err)
	}

	_, err = store.Maintain(&fstore.MaintainOptions{Grace: -time.Second})
	wantError(t, err, fstore.ErrInvalidArgument, "grace_ms is negative")
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = store.Maintain(nil)
	wantError(t, err, fstore.ErrInvalidState, "closed")
}

func TestSummaryCountsEntriesPerSymbol(t *testing.T) {
	store := openStore(t)
	later := testKey("AAPL")
	later.Start, later.End = date(2024, 4, 1), date(2024, 6, 28)
	for i, key := range []fstore.Key{testKey("AAPL"), later, testKey("MSFT")} {
		if err := store.Put(key, sample(cAlloc, 3+i, "s")); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Flush(); err != nil {
		t.Fatal(err)
	}
	rdr, err := store.Summary()
	if err != nil {
		t.Fatal(err)
	}
	cols, rows := table(t, rdr)
	if strings.Join(cols, ",") != "feature_set:utf8,symbol:utf8,entries:uint64,rows:uint64,bytes:uint64,"+
		"oldest:timestamp[us, tz=UTC],newest:timestamp[us, tz=UTC]" {
		t.Fatalf("columns %v", cols)
	}
	// AAPL: two entries of 3 and 4 rows; MSFT: one of 5.
	if len(rows) != 2 || !strings.HasPrefix(rows[0], "go-binding-test|AAPL|2|7|") ||
		!strings.HasPrefix(rows[1], "go-binding-test|MSFT|1|5|") {
		t.Fatalf("rows %q", rows)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = store.Summary()
	wantError(t, err, fstore.ErrInvalidState, "closed")
}
