package fstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/libfstore/libfstore/bindings/go/fstore"
)

// waitForWaiters returns once n calls of s wait for another's compute.
func waitForWaiters(t *testing.T, s *fstore.Store, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); mustStats(t, s).Waits < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d callers are waiting", mustStats(t, s).Waits, n)
		}
	}
}

// The leader's context is cancelled mid-compute: that is its caller giving
// up, not the compute failing, so one of the waiters computes instead and
// every waiter gets the data.
func TestCancelledLeaderHandsTheComputeOver(t *testing.T) {
	for _, how := range []string{"cancel", "deadline"} {
		t.Run(how, func(t *testing.T) {
			s := openStore(t)
			key := testKey("HANDOVER-" + how)
			ctx, cancel := context.WithCancel(context.Background())
			if how == "deadline" {
				ctx, cancel = context.WithTimeout(context.Background(), 600*time.Millisecond)
			}
			defer cancel()
			started := make(chan struct{})
			leader := make(chan error, 1)
			go func() {
				_, err := s.GetOrCompute(ctx, key, func(ctx context.Context, _ fstore.Key) (array.RecordReader, error) {
					close(started)
					<-ctx.Done()
					return nil, ctx.Err()
				})
				leader <- err
			}()
			<-started

			const waiters = 6
			var computes atomic.Int32
			results := make([][]string, waiters)
			errs := make([]error, waiters)
			var wg sync.WaitGroup
			for i := range waiters {
				wg.Go(func() {
					rdr, err := s.GetOrCompute(context.Background(), key, func(context.Context, fstore.Key) (array.RecordReader, error) {
						computes.Add(1)
						time.Sleep(50 * time.Millisecond)
						return sample(cAlloc, 8, "taken-over"), nil
					})
					if err != nil {
						errs[i] = err
						return
					}
					_, results[i] = table(t, rdr)
				})
			}
			waitForWaiters(t, s, waiters)
			if how == "cancel" {
				cancel()
			}
			wg.Wait()

			err := <-leader
			if how == "cancel" {
				wantError(t, err, fstore.ErrCanceled, "the caller's context is done (context canceled)")
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("errors.Is(leader's error, context.Canceled) is false: %v", err)
				}
			} else {
				wantError(t, err, fstore.ErrTimeout, "the caller's context is done (context deadline exceeded)")
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("errors.Is(leader's error, context.DeadlineExceeded) is false: %v", err)
				}
			}
			_, want := expected(t, 8, "taken-over")
			for i := range waiters {
				if errs[i] != nil {
					t.Errorf("waiter %d: %v", i, errs[i])
				} else if strings.Join(results[i], "\n") != strings.Join(want, "\n") {
					t.Errorf("waiter %d got %v", i, results[i])
				}
			}
			if n := computes.Load(); n != 1 {
				t.Fatalf("%d waiters computed, want 1", n)
			}
		})
	}
}

// A compute that fails while its caller still waits fails every waiter.
func TestGenuineFailureReachesEveryWaiter(t *testing.T) {
	s := openStore(t)
	key := testKey("GENUINE")
	started := make(chan struct{})
	release := make(chan struct{})
	errUpstream := errors.New("upstream is down")
	leader := make(chan error, 1)
	go func() {
		_, err := s.GetOrCompute(context.Background(), key, func(context.Context, fstore.Key) (array.RecordReader, error) {
			close(started)
			<-release
			return nil, errUpstream
		})
		leader <- err
	}()
	<-started
	const waiters = 3
	errs := make(chan error, waiters)
	for range waiters {
		go func() {
			_, err := s.GetOrCompute(context.Background(), key, mustNotCompute(t))
			errs <- err
		}()
	}
	waitForWaiters(t, s, waiters)
	close(release)
	if err := <-leader; !errors.Is(err, errUpstream) {
		t.Fatalf("leader: %v", err)
	}
	for range waiters {
		wantError(t, <-errs, fstore.ErrCallbackFailed, "upstream is down")
	}
}

// A context deadline never lengthens the store's wait: a store that waits
// 300 ms, called with an hour-long context, still gives up after 300 ms.
// WithTimeout stays the override it is documented to be.
func TestContextDeadlineOnlyShortensTheWait(t *testing.T) {
	s := openStore(t, fstore.WithWaitTimeout(300*time.Millisecond))
	key := testKey("DEADLINE")
	leader := slowLeader(t, s, key, 2500*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	began := time.Now()
	_, err := s.GetOrCompute(ctx, key, mustNotCompute(t))
	took := time.Since(began)
	wantError(t, err, fstore.ErrTimeout, "gave up after 300 ms")
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the store's timeout blamed on a context an hour from its deadline: %v", err)
	}
	if took > 1500*time.Millisecond {
		t.Fatalf("a 300 ms store wait with an hour-long context returned after %v", took)
	}
	t.Logf("store wait 300 ms, context 1 h: gave up after %v", took)

	began = time.Now()
	_, err = s.GetOrCompute(ctx, key, mustNotCompute(t), fstore.WithTimeout(700*time.Millisecond))
	took = time.Since(began)
	wantError(t, err, fstore.ErrTimeout, "gave up after 700 ms")
	if took < 650*time.Millisecond || took > 2000*time.Millisecond {
		t.Fatalf("WithTimeout(700ms) returned after %v", took)
	}

	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	began = time.Now()
	_, err = s.GetOrCompute(short, key, mustNotCompute(t), fstore.WithTimeout(time.Hour))
	if !errors.Is(err, fstore.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a 100 ms context with WithTimeout(1h): %v", err)
	}
	if took := time.Since(began); took > 1000*time.Millisecond {
		t.Fatalf("a 100 ms context with WithTimeout(1h) returned after %v", took)
	}
	if err := <-leader; err != nil {
		t.Fatalf("leader: %v", err)
	}
}
