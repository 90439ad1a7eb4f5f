package fstore_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/libfstore/libfstore/bindings/go/fstore"
)

// watchedContext counts the calls of Done: a call that registers a watcher
// on its context (to cancel a wait) asks for Done; one that does not, never.
type watchedContext struct {
	context.Context
	dones atomic.Int32
}

func (c *watchedContext) Done() <-chan struct{} {
	c.dones.Add(1)
	return c.Context.Done()
}

// A hit through GetOrCompute needs none of what a wait or a compute does: it
// watches no context (no goroutine, no registration), registers no handle
// and allocates no more than Get. A miss still watches its context.
func TestGetOrComputeHitTakesTheFastPath(t *testing.T) {
	s := openStore(t)
	key := testKey("FASTPATH")
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()

	miss := &watchedContext{Context: parent}
	rdr, err := s.GetOrCompute(miss, key, computeSample(6, "computed"))
	if err != nil {
		t.Fatal(err)
	}
	rdr.Release()
	if miss.dones.Load() == 0 {
		t.Fatal("a miss did not watch its context: it could not be cancelled")
	}

	hit := &watchedContext{Context: parent}
	rdr, err = s.GetOrCompute(hit, key, func(context.Context, fstore.Key) (array.RecordReader, error) {
		t.Error("a hit computed")
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rdr.Release()
	rdr, err = s.GetOrCompute(hit, key, computeSample(1, "unused"), fstore.WithColumns("price"), fstore.WithTimeout(0))
	if err != nil {
		t.Fatal(err)
	}
	if n := rdr.Schema().NumFields(); n != 1 {
		t.Errorf("a projected hit has %d columns, want 1", n)
	}
	rdr.Release()
	if n := hit.dones.Load(); n != 0 {
		t.Errorf("a hit watched its context (%d calls of Done)", n)
	}

	ctx := context.Background()
	unused := computeSample(1, "unused")
	get := testing.AllocsPerRun(50, func() {
		rdr, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		rdr.Release()
	})
	getOrCompute := testing.AllocsPerRun(50, func() {
		rdr, err := s.GetOrCompute(ctx, key, unused)
		if err != nil {
			t.Fatal(err)
		}
		rdr.Release()
	})
	if getOrCompute > get {
		t.Errorf("a hit through GetOrCompute allocates %v times, Get %v: the hit left the fast path", getOrCompute, get)
	}
	stats, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if stats.Misses != 1 || stats.Computes != 1 {
		t.Errorf("stats %+v: want 1 miss and 1 compute, each call counted once", stats)
	}
}
