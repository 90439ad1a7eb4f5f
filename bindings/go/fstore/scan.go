package fstore

/*
#include <stdlib.h>
#include "fstore.h"
*/
import "C"

import (
	"errors"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/array"
)

// ScanRequest selects the entries Scan reads; the library applies the rules
// (see fstore_scan_request in fstore.h).
type ScanRequest struct {
	FeatureSet string
	// Symbols to read; nil reads every symbol. A non-nil empty slice is
	// refused (ErrInvalidArgument), so that an empty selection never reads
	// everything.
	Symbols []string
	// Start and End bound the window, both days included: an entry is read
	// when its whole range lies within it.
	Start, End time.Time
	// Config is JSON text ("" means {}); only entries of this config are read.
	Config string
	// Columns are the feature columns to return, in this order; none: all.
	Columns []string
}

// MissingEntry is an entry the manifest lists that Scan could not read: its
// file is gone or fails verification.
type MissingEntry struct {
	Key    Key
	Reason string
}

// ScanResult holds the rows of a scan and the entries it found missing.
type ScanResult struct {
	// Records has the key columns fstore_symbol, fstore_start_date and
	// fstore_end_date in front of the features. The caller releases it.
	Records array.RecordReader
	// Missing lists the entries that were not read, with why; never computed.
	Missing []MissingEntry
}

// cStrings copies values into a C array (non-NULL even when empty, so that
// the library can tell an empty list from none), freed by the returned func.
func cStrings(what string, values []string) (**C.char, func(), error) {
	ptrSize := C.size_t(unsafe.Sizeof((*C.char)(nil)))
	array := (**C.char)(C.calloc(C.size_t(max(len(values), 1)), ptrSize))
	items := unsafe.Slice(array, len(values))
	free := func() {
		for _, p := range items {
			C.free(unsafe.Pointer(p))
		}
		C.free(unsafe.Pointer(array))
	}
	for i, v := range values {
		p, err := cString(what, v)
		if err != nil {
			free()
			return nil, nil, err
		}
		items[i] = p
	}
	return array, free, nil
}

// Scan reads many entries of one feature set and config at once, as one
// stream with the key columns in front; it never computes. Entries the
// manifest lists whose file is missing or fails verification are returned
// in Missing, not dropped.
func (s *Store) Scan(req ScanRequest) (*ScanResult, error) {
	start, err := day("ScanRequest.Start", req.Start)
	if err != nil {
		return nil, err
	}
	end, err := day("ScanRequest.End", req.End)
	if err != nil {
		return nil, err
	}
	var c C.fstore_scan_request
	c.start_date, c.end_date = C.int32_t(start), C.int32_t(end)
	if c.feature_set, err = cString("ScanRequest.FeatureSet", req.FeatureSet); err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(c.feature_set))
	if c.config, err = cString("ScanRequest.Config", req.Config); err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(c.config))
	if req.Symbols != nil {
		symbols, free, err := cStrings("symbol", req.Symbols)
		if err != nil {
			return nil, err
		}
		defer free()
		c.symbols, c.symbol_count = symbols, C.size_t(len(req.Symbols))
	}
	if len(req.Columns) > 0 {
		columns, free, err := cStrings("column name", req.Columns)
		if err != nil {
			return nil, err
		}
		defer free()
		c.columns, c.column_count = columns, C.size_t(len(req.Columns))
	}
	defer runtime.KeepAlive(s)
	store := s.handle()
	out, missingOut := newStream(), newStream()
	defer C.free(unsafe.Pointer(out))
	defer C.free(unsafe.Pointer(missingOut))
	var cerr C.fstore_error
	if status := C.fstore_store_scan(store, &c, out, missingOut, &cerr); status != C.FSTORE_STATUS_OK {
		return nil, takeError(status, &cerr)
	}
	// Both streams are taken over before either failure is reported.
	missing, missingErr := readMissing(missingOut)
	records, err := importStream(out)
	if err = errors.Join(missingErr, err); err != nil {
		if records != nil {
			records.Release()
		}
		return nil, err
	}
	return &ScanResult{Records: records, Missing: missing}, nil
}

// readMissing converts the library's table of missing entries.
func readMissing(stream *C.struct_ArrowArrayStream) ([]MissingEntry, error) {
	rdr, err := importStream(stream)
	if err != nil {
		return nil, err
	}
	defer rdr.Release()
	var out []MissingEntry
	for rdr.Next() {
		rec := rdr.RecordBatch()
		col := func(name string) any { return rec.Column(rec.Schema().FieldIndices(name)[0]) }
		featureSet, symbol := col("feature_set").(*array.String), col("symbol").(*array.String)
		starts, ends := col("start_date").(*array.Date32), col("end_date").(*array.Date32)
		config, reason := col("config").(*array.String), col("reason").(*array.String)
		// Values point into the stream's C memory, released on return: copy them.
		for i := 0; i < int(rec.NumRows()); i++ {
			out = append(out, MissingEntry{
				Key: Key{
					FeatureSet: strings.Clone(featureSet.Value(i)),
					Symbol:     strings.Clone(symbol.Value(i)),
					Start:      starts.Value(i).ToTime(),
					End:        ends.Value(i).ToTime(),
					Config:     strings.Clone(config.Value(i)),
				},
				Reason: strings.Clone(reason.Value(i)),
			})
		}
	}
	return out, rdr.Err()
}
