package fstore_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory/mallocator"

	"github.com/libfstore/libfstore/bindings/go/fstore"
)

func ExampleStore_GetOrCompute() {
	dir, err := os.MkdirTemp("", "fstore-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	store, err := fstore.Open(fstore.WithCacheDir(dir))
	if err != nil {
		panic(err)
	}
	defer store.Close()

	key := fstore.Key{
		FeatureSet: "close",
		Symbol:     "AAPL",
		Start:      time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC),
		End:        time.Date(2024, 1, 3, 0, 0, 0, 0, time.UTC),
	}
	compute := func(ctx context.Context, key fstore.Key) (array.RecordReader, error) {
		schema := arrow.NewSchema([]arrow.Field{{Name: "close", Type: arrow.PrimitiveTypes.Float64}}, nil)
		// C memory: the store reads the exported buffers from C.
		b := array.NewRecordBuilder(mallocator.NewMallocator(), schema)
		defer b.Release()
		b.Field(0).(*array.Float64Builder).AppendValues([]float64{185.64, 184.25}, nil)
		rec := b.NewRecordBatch()
		defer rec.Release()
		return array.NewRecordReader(schema, []arrow.RecordBatch{rec})
	}

	for range 2 {
		rdr, err := store.GetOrCompute(context.Background(), key, compute)
		if err != nil {
			panic(err)
		}
		for rdr.Next() {
			fmt.Println(rdr.RecordBatch().Column(0))
		}
		rdr.Release()
	}
	stats, _ := store.Stats()
	fmt.Printf("computes=%d hits=%d\n", stats.Computes, stats.Hits)
	// Output:
	// [185.64 184.25]
	// [185.64 184.25]
	// computes=1 hits=1
}
