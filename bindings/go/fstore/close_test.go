package fstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/libfstore/libfstore/bindings/go/fstore"
)

// Close while one goroutine computes an entry and another waits for it: the
// library cancels the wait at once, lets the compute finish and stores its
// data, then closes; every later call is refused as on a closed store.
// (Run with -race.)
func TestCloseWhileGetOrComputeIsInFlight(t *testing.T) {
	dir := t.TempDir()
	s, err := fstore.Open(fstore.WithCacheDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	key := testKey("CLOSE-IN-FLIGHT")
	started := make(chan struct{})
	release := make(chan struct{})
	type result struct {
		rdr array.RecordReader
		err error
	}
	leader := make(chan result, 1)
	go func() {
		rdr, err := s.GetOrCompute(context.Background(), key, func(context.Context, fstore.Key) (array.RecordReader, error) {
			close(started)
			<-release
			return sample(cAlloc, 8, "computed-while-closing"), nil
		})
		leader <- result{rdr, err}
	}()
	<-started
	waiter := make(chan error, 1)
	go func() {
		_, err := s.GetOrCompute(context.Background(), key, computeSample(8, "never"))
		waiter <- err
	}()
	waitForWaiters(t, s, 1)

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-waiter:
		wantError(t, err, fstore.ErrCanceled, "")
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("Close did not cancel the waiting GetOrCompute within 10 s")
	}
	select {
	case err := <-closed:
		close(release)
		t.Fatalf("Close returned (%v) while a compute was still running", err)
	case <-time.After(200 * time.Millisecond):
	}

	close(release)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10 s of the compute returning")
	}
	r := <-leader
	if r.err != nil {
		t.Fatalf("the computing call: %v", r.err)
	}
	wantCols, wantRows := expected(t, 8, "computed-while-closing")
	cols, rows := table(t, r.rdr)
	sameTable(t, "the computing call", cols, rows, wantCols, wantRows)
	_, err = s.GetOrCompute(context.Background(), key, computeSample(8, "after"))
	wantError(t, err, fstore.ErrInvalidState, "closed")

	reopened := openStore(t, fstore.WithCacheDir(dir))
	rdr, err := reopened.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("the entry computed while closing was not stored: %v", err)
	}
	cols, rows = table(t, rdr)
	sameTable(t, "the stored entry", cols, rows, wantCols, wantRows)
}

// Close from inside a compute returns at once; the call that computes still
// gets its data, and the store is closed when it returns.
func TestCloseFromInsideACompute(t *testing.T) {
	s := openStore(t)
	key := testKey("CLOSE-FROM-COMPUTE")
	closed := make(chan error, 1)
	rdr, err := s.GetOrCompute(context.Background(), key, func(context.Context, fstore.Key) (array.RecordReader, error) {
		closed <- s.Close()
		return sample(cAlloc, 4, "closing"), nil
	})
	if err != nil {
		t.Fatalf("GetOrCompute: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close inside the compute: %v", err)
	}
	wantCols, wantRows := expected(t, 4, "closing")
	cols, rows := table(t, rdr)
	sameTable(t, "the computing call", cols, rows, wantCols, wantRows)
	_, err = s.Get(context.Background(), key)
	wantError(t, err, fstore.ErrInvalidState, "closed")
}
