package fstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/libfstore/libfstore/bindings/go/fstore"
)

func TestScanReturnsKeyColumnsAndReportsMissingEntries(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, fstore.WithCacheDir(dir))
	for i, symbol := range []string{"MSFT", "AAPL"} {
		if err := s.Put(testKey(symbol), sample(cAlloc, 3+i, symbol)); err != nil {
			t.Fatal(err)
		}
	}
	req := fstore.ScanRequest{
		FeatureSet: "go-binding-test",
		Start:      date(2024, 1, 1),
		End:        date(2024, 12, 31),
		Config:     `{"kind": "sma", "window": 20.0}`,
	}
	res, err := s.Scan(req)
	if err != nil {
		t.Fatal(err)
	}
	cols, rows := table(t, res.Records)
	if strings.Join(cols, ",") != "fstore_symbol:utf8,fstore_start_date:date32,fstore_end_date:date32,day:date32,price:float64,tag:utf8" {
		t.Fatalf("columns %v", cols)
	}
	// AAPL's 4 rows first (ordered by symbol), then MSFT's 3.
	if len(rows) != 7 || !strings.HasPrefix(rows[0], "AAPL|2024-01-02|2024-03-28|") || !strings.HasPrefix(rows[6], "MSFT|") {
		t.Fatalf("rows %v", rows)
	}
	if len(res.Missing) != 0 {
		t.Fatalf("missing %v", res.Missing)
	}

	// One symbol, one column, after MSFT's file is deleted: reported, not dropped.
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	entries, err := s.Entries()
	if err != nil {
		t.Fatal(err)
	}
	for entries.Next() {
		rec := entries.RecordBatch()
		paths := rec.Column(rec.Schema().FieldIndices("path")[0]).(*array.String)
		symbols := rec.Column(rec.Schema().FieldIndices("symbol")[0]).(*array.String)
		for i := 0; i < int(rec.NumRows()); i++ {
			if symbols.Value(i) == "MSFT" {
				if err := os.Remove(filepath.Join(dir, paths.Value(i))); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	entries.Release()
	req.Symbols = []string{"MSFT", "AAPL"}
	req.Columns = []string{"price"}
	res, err = s.Scan(req)
	if err != nil {
		t.Fatal(err)
	}
	cols, rows = table(t, res.Records)
	if len(cols) != 4 || cols[3] != "price:float64" || len(rows) != 4 {
		t.Fatalf("columns %v, rows %v", cols, rows)
	}
	want := testKey("MSFT")
	want.Config = `{"kind":"sma","window":20}` // canonical
	if len(res.Missing) != 1 || res.Missing[0].Reason != "its file is missing" || res.Missing[0].Key != want {
		t.Fatalf("missing %+v, want %+v", res.Missing, want)
	}

	// Hostile requests: the library's status and message.
	for _, c := range []struct {
		change func(*fstore.ScanRequest)
		why    string
	}{
		{func(r *fstore.ScanRequest) { r.Symbols = []string{} }, "the symbol list is empty"},
		{func(r *fstore.ScanRequest) { r.Columns = []string{"nope"} }, "unknown column 'nope'"},
		{func(r *fstore.ScanRequest) { r.End = date(2023, 1, 1) }, "the window is inverted"},
	} {
		bad := req
		c.change(&bad)
		_, err := s.Scan(bad)
		if !errors.Is(err, fstore.ErrInvalidArgument) || !strings.Contains(err.Error(), c.why) {
			t.Fatalf("Scan: %v, want ErrInvalidArgument with %q", err, c.why)
		}
	}
}
