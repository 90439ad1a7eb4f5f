// The training-workers scenario in Go: several workers train for a few
// epochs, each epoch asking for the features of every symbol, in its own
// order. The first ask of a key computes it, exactly once across the
// workers; every other ask waits for that compute or hits the stored entry.
//
//	go run . [-workers 4] [-epochs 3] [-compute 20ms] [-cache DIR]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory/mallocator"

	"github.com/libfstore/libfstore/bindings/go/fstore"
)

var symbols = []string{"AAPL", "MSFT", "NVDA", "AMZN", "GOOG"}

// returns is the expensive feature computation: here a few made-up daily
// returns, built in C memory as the store reads them from C.
func returns(ctx context.Context, key fstore.Key, cost time.Duration) (array.RecordReader, error) {
	time.Sleep(cost)
	schema := arrow.NewSchema([]arrow.Field{{Name: "ret", Type: arrow.PrimitiveTypes.Float64}}, nil)
	b := array.NewRecordBuilder(mallocator.NewMallocator(), schema)
	defer b.Release()
	for day := range 20 {
		b.Field(0).(*array.Float64Builder).Append(float64(len(key.Symbol)*day%7) / 100)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return array.NewRecordReader(schema, []arrow.RecordBatch{rec})
}

func main() {
	workers := flag.Int("workers", 4, "training workers")
	epochs := flag.Int("epochs", 3, "epochs per worker")
	cost := flag.Duration("compute", 20*time.Millisecond, "time one compute takes")
	cache := flag.String("cache", "", "cache directory (default: a fresh temporary one)")
	flag.Parse()
	if err := train(*workers, *epochs, *cost, *cache); err != nil {
		log.Fatal("training_workers: ", err)
	}
	fmt.Println("training_workers: every key computed exactly once")
}

func train(workers, epochs int, cost time.Duration, cache string) error {
	if cache == "" {
		dir, err := os.MkdirTemp("", "fstore-training-workers")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cache = dir
	}
	store, err := fstore.Open(fstore.WithCacheDir(cache), fstore.WithWaitTimeout(time.Minute))
	if err != nil {
		return err
	}
	defer store.Close()

	computes := make(map[string]*atomic.Int64)
	for _, s := range symbols {
		computes[s] = new(atomic.Int64)
	}
	var rows atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for range epochs {
				for _, i := range rand.Perm(len(symbols)) {
					key := fstore.Key{FeatureSet: "returns", Symbol: symbols[i], Config: `{"window": 20}`,
						Start: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), End: time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC)}
					rdr, err := store.GetOrCompute(context.Background(), key, func(ctx context.Context, key fstore.Key) (array.RecordReader, error) {
						computes[key.Symbol].Add(1)
						return returns(ctx, key, cost)
					})
					if err != nil {
						errs <- fmt.Errorf("worker %d, %s: %w", w, symbols[i], err)
						return
					}
					for rdr.Next() {
						rows.Add(rdr.RecordBatch().NumRows())
					}
					rdr.Release()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}

	stats, err := store.Stats()
	if err != nil {
		return err
	}
	fmt.Printf("%d workers x %d epochs x %d symbols: %d rows read; computes %d, hits %d, waits %d\n",
		workers, epochs, len(symbols), rows.Load(), stats.Computes, stats.Hits, stats.Waits)
	for _, s := range symbols {
		if n := computes[s].Load(); n != 1 {
			return fmt.Errorf("%s was computed %d times, not once", s, n)
		}
	}
	if want := int64(workers * epochs * len(symbols) * 20); rows.Load() != want {
		return fmt.Errorf("read %d rows, want %d", rows.Load(), want)
	}
	return nil
}
