package fstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/arrow/memory/mallocator"

	"github.com/libfstore/libfstore/bindings/go/fstore"
)

func vectorsPath() string {
	if p := os.Getenv("FSTORE_LOCK_KEY_VECTORS"); p != "" {
		return p
	}
	return filepath.Join("..", "..", "tests", "vectors", "lock_keys.json")
}

func TestLockKeyVectors(t *testing.T) {
	raw, err := os.ReadFile(vectorsPath())
	if err != nil {
		t.Fatal(err)
	}
	var vectors struct {
		LockKeys []struct {
			Symbol string `json:"symbol"`
			Key    int64  `json:"key"`
		} `json:"lock_keys"`
	}
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors.LockKeys) < 4 {
		t.Fatalf("only %d vectors in %s", len(vectors.LockKeys), vectorsPath())
	}
	for _, v := range vectors.LockKeys {
		got, err := fstore.LockKey(v.Symbol)
		if err != nil {
			t.Errorf("LockKey(%q): %v", v.Symbol, err)
		} else if got != v.Key {
			t.Errorf("LockKey(%q) = %d, want %d", v.Symbol, got, v.Key)
		}
	}
	t.Logf("%d vectors from %s", len(vectors.LockKeys), vectorsPath())
}

func TestLockKeyRefusesBadSymbols(t *testing.T) {
	_, err := fstore.LockKey("")
	wantError(t, err, fstore.ErrInvalidArgument, "symbol is empty")
	_, err = fstore.LockKey(strings.Repeat("x", 1025))
	wantError(t, err, fstore.ErrInvalidArgument, "the limit is 1024")
	_, err = fstore.LockKey("AA\x00PL")
	wantError(t, err, fstore.ErrInvalidArgument, "NUL byte")
	if _, err := fstore.LockKey(strings.Repeat("x", 1024)); err != nil {
		t.Fatalf("1,024 bytes is allowed: %v", err)
	}
}

func TestVersionAndBackend(t *testing.T) {
	if fstore.Version() == "" {
		t.Fatal("empty version")
	}
	s := openStore(t)
	if got := s.ManifestBackend(); got != "duckdb" {
		t.Fatalf("ManifestBackend() = %q", got)
	}
	if got := fstore.StatusTimeout.String(); got != "timeout" {
		t.Fatalf("StatusTimeout.String() = %q", got)
	}
}

func TestRoundTripAndHit(t *testing.T) {
	mem := memory.NewCheckedAllocator(mallocator.NewMallocator())
	s := openStore(t)
	key := testKey("AAPL")
	wantCols, wantRows := expected(t, 40, "first")

	var runs atomic.Int32
	rdr, err := s.GetOrCompute(context.Background(), key, func(_ context.Context, k fstore.Key) (array.RecordReader, error) {
		runs.Add(1)
		if k != key {
			t.Errorf("compute got key %+v, want %+v", k, key)
		}
		return sample(mem, 40, "first"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cols, rows := table(t, rdr)
	sameTable(t, "computed", cols, rows, wantCols, wantRows)
	mem.AssertSize(t, 0) // the store released what compute handed over

	// The same key again, config spelled differently: a hit.
	again := key
	again.Config = `{ "kind": "sma",  "window": 20 }`
	rdr, err = s.GetOrCompute(context.Background(), again, computeSample(3, "second"))
	if err != nil {
		t.Fatal(err)
	}
	cols, rows = table(t, rdr)
	sameTable(t, "hit", cols, rows, wantCols, wantRows)
	if runs.Load() != 1 {
		t.Fatalf("compute ran %d times", runs.Load())
	}
	st := mustStats(t, s)
	if st.Misses != 1 || st.Hits != 1 || st.Computes != 1 || st.ComputeFailures != 0 {
		t.Fatalf("stats %+v, want 1 miss, 1 hit, 1 compute", st)
	}
	if st.BytesWritten == 0 || st.BytesRead == 0 {
		t.Fatalf("stats %+v: no bytes counted", st)
	}

	rdr, err = s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	cols, rows = table(t, rdr)
	sameTable(t, "get", cols, rows, wantCols, wantRows)

	ok, err := s.Contains(key)
	if err != nil || !ok {
		t.Fatalf("Contains = %v, %v", ok, err)
	}

	entries, err := s.Entries()
	if err != nil {
		t.Fatal(err)
	}
	_, listed := table(t, entries)
	if len(listed) != 1 || !strings.Contains(listed[0], "|AAPL|") {
		t.Fatalf("Entries: %v", listed)
	}

	removed, err := s.Invalidate(key)
	if err != nil || !removed {
		t.Fatalf("Invalidate = %v, %v", removed, err)
	}
	removed, err = s.Invalidate(key)
	if err != nil || removed {
		t.Fatalf("second Invalidate = %v, %v", removed, err)
	}
	_, err = s.Get(context.Background(), key)
	if !errors.Is(err, fstore.ErrNotFound) {
		t.Fatalf("Get after Invalidate: %v", err)
	}
	var ferr *fstore.Error
	if !errors.As(err, &ferr) || ferr.Status != fstore.StatusNotFound {
		t.Fatalf("errors.As: %#v", err)
	}

	// Put stores data computed elsewhere; the caller keeps its reference.
	in := sample(mem, 7, "put")
	if err := s.Put(key, in); err != nil {
		t.Fatal(err)
	}
	in.Release()
	mem.AssertSize(t, 0)
	rdr, err = s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	putCols, putRows := expected(t, 7, "put")
	cols, rows = table(t, rdr)
	sameTable(t, "put", cols, rows, putCols, putRows)
}

func TestDatesAreCalendarDays(t *testing.T) {
	s := openStore(t)
	key := testKey("DATES")
	if _, err := s.GetOrCompute(context.Background(), key, computeSample(2, "d")); err != nil {
		t.Fatal(err)
	}
	// Late evening of the same calendar days, west of Greenwich: the same entry.
	ny := time.FixedZone("UTC-5", -5*3600)
	other := key
	other.Start = time.Date(2024, 1, 2, 23, 30, 0, 0, ny)
	other.End = time.Date(2024, 3, 28, 23, 59, 0, 0, ny)
	if ok, err := s.Contains(other); err != nil || !ok {
		t.Fatalf("Contains(same days in UTC-5) = %v, %v", ok, err)
	}
	other.End = other.End.Add(time.Hour) // 2024-03-29 in UTC-5
	if ok, err := s.Contains(other); err != nil || ok {
		t.Fatalf("Contains(one more day) = %v, %v", ok, err)
	}

	entries, err := s.Entries()
	if err != nil {
		t.Fatal(err)
	}
	defer entries.Release()
	if !entries.Next() {
		t.Fatalf("no manifest rows: %v", entries.Err())
	}
	rec := entries.RecordBatch()
	idx := rec.Schema().FieldIndices("start_date")
	if len(idx) != 1 {
		t.Fatalf("manifest schema %v", rec.Schema())
	}
	if start, ok := rec.Column(idx[0]).(*array.Date32); ok {
		if got := start.Value(0).ToTime(); !got.Equal(key.Start) {
			t.Fatalf("manifest start_date %v, want %v", got, key.Start)
		}
	} else {
		t.Logf("manifest start_date is %v: not checked as date32", rec.Column(idx[0]).DataType())
	}
}

func TestProjection(t *testing.T) {
	s := openStore(t)
	key := testKey("MSFT")
	rdr, err := s.GetOrCompute(context.Background(), key, computeSample(12, "p"), fstore.WithColumns("tag", "day"))
	if err != nil {
		t.Fatal(err)
	}
	cols, rows := table(t, rdr)
	if strings.Join(cols, ",") != "tag:utf8,day:date32" || len(rows) != 12 || rows[0] != "p-0|2024-01-02" {
		t.Fatalf("projected compute: %v %v", cols, rows)
	}
	rdr, err = s.Get(context.Background(), key, fstore.WithColumns("price"))
	if err != nil {
		t.Fatal(err)
	}
	cols, rows = table(t, rdr)
	if strings.Join(cols, ",") != "price:float64" || len(rows) != 12 || rows[1] != "100.25" {
		t.Fatalf("projected get: %v %v", cols, rows)
	}
	// A hit projects too; no columns means all of them.
	rdr, err = s.GetOrCompute(context.Background(), key, computeSample(1, "x"), fstore.WithColumns())
	if err != nil {
		t.Fatal(err)
	}
	if cols, _ = table(t, rdr); len(cols) != 3 {
		t.Fatalf("WithColumns() gave %v", cols)
	}
	_, err = s.Get(context.Background(), key, fstore.WithColumns("volume"))
	wantError(t, err, fstore.ErrInvalidArgument, "unknown column 'volume'")
}

func TestBadInput(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	cases := []struct {
		name     string
		edit     func(*fstore.Key)
		sentinel error
		says     string
	}{
		{"empty symbol", func(k *fstore.Key) { k.Symbol = "" }, fstore.ErrInvalidArgument, "symbol is empty"},
		{"over-long symbol", func(k *fstore.Key) { k.Symbol = strings.Repeat("S", 1025) }, fstore.ErrInvalidArgument, "symbol is 1025 bytes long; the limit is 1024"},
		{"empty feature set", func(k *fstore.Key) { k.FeatureSet = "" }, fstore.ErrInvalidArgument, "feature_set is empty"},
		{"end before start", func(k *fstore.Key) { k.End = k.Start.AddDate(0, 0, -1) }, fstore.ErrInvalidArgument, "end_date 19723 is before start_date 19724"},
		{"invalid config JSON", func(k *fstore.Key) { k.Config = `{"window": }` }, fstore.ErrInvalidArgument, "invalid config JSON"},
		{"NUL in symbol", func(k *fstore.Key) { k.Symbol = "A\x00B" }, fstore.ErrInvalidArgument, "key.Symbol contains a NUL byte"},
		{"zero start", func(k *fstore.Key) { k.Start = time.Time{} }, fstore.ErrInvalidArgument, "key.Start is not set"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := testKey("BAD")
			c.edit(&key)
			_, err := s.GetOrCompute(ctx, key, func(context.Context, fstore.Key) (array.RecordReader, error) {
				t.Error("compute ran for a bad key")
				return nil, nil
			})
			wantError(t, err, c.sentinel, c.says)
			_, err = s.Get(ctx, key)
			wantError(t, err, c.sentinel, c.says)
			_, err = s.Contains(key)
			wantError(t, err, c.sentinel, c.says)
			err = s.Put(key, sample(cAlloc, 1, "x"))
			wantError(t, err, c.sentinel, c.says)
		})
	}
	_, err := s.GetOrCompute(ctx, testKey("BAD"), nil)
	wantError(t, err, fstore.ErrInvalidArgument, "compute is nil")

	t.Run("unknown option", func(t *testing.T) {
		_, err := fstore.Open(fstore.WithCacheDir(t.TempDir()), fstore.WithOption("cache_dri", "/tmp/x"))
		wantError(t, err, fstore.ErrInvalidArgument, "unknown option 'cache_dri'")
	})
	t.Run("bad option value", func(t *testing.T) {
		_, err := fstore.Open(fstore.WithCacheDir(t.TempDir()), fstore.WithLockGranularity("row"))
		wantError(t, err, fstore.ErrInvalidArgument, "bad value 'row'")
		_, err = fstore.Open(fstore.WithCacheDir(t.TempDir()), fstore.WithWaitTimeout(-time.Second))
		wantError(t, err, fstore.ErrInvalidArgument, "option wait.timeout_ms")
	})
	t.Run("every option", func(t *testing.T) {
		s, err := fstore.Open(fstore.WithCacheDir(t.TempDir()), fstore.WithLockGranularity(fstore.LockPerEntry),
			fstore.WithCrossProcessLock(false), fstore.WithWaitTimeout(1500*time.Microsecond), fstore.WithVerifyChecksums(false))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestComputeErrorStoresNothingAndRetries(t *testing.T) {
	s := openStore(t)
	key := testKey("FAIL")
	errUpstream := errors.New("upstream price feed is down")
	_, err := s.GetOrCompute(context.Background(), key, func(context.Context, fstore.Key) (array.RecordReader, error) {
		return nil, errUpstream
	})
	wantError(t, err, fstore.ErrCallbackFailed, "upstream price feed is down")
	if !errors.Is(err, errUpstream) {
		t.Fatalf("errors.Is(err, compute's error) is false: %v", err)
	}
	if ok, err := s.Contains(key); err != nil || ok {
		t.Fatalf("after a failed compute Contains = %v, %v", ok, err)
	}
	if st := mustStats(t, s); st.ComputeFailures != 1 {
		t.Fatalf("stats %+v", st)
	}
	rdr, err := s.GetOrCompute(context.Background(), key, computeSample(5, "retry"))
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	wantCols, wantRows := expected(t, 5, "retry")
	cols, rows := table(t, rdr)
	sameTable(t, "retry", cols, rows, wantCols, wantRows)
}

func TestComputePanicIsAnError(t *testing.T) {
	s := openStore(t)
	key := testKey("PANIC")
	_, err := s.GetOrCompute(context.Background(), key, func(context.Context, fstore.Key) (array.RecordReader, error) {
		panic("feature code exploded")
	})
	wantError(t, err, fstore.ErrCallbackFailed, "compute panicked: feature code exploded")
	if ok, _ := s.Contains(key); ok {
		t.Fatal("a panicking compute stored something")
	}
	// A reader that panics while the library reads it fails the call too.
	_, err = s.GetOrCompute(context.Background(), key, func(context.Context, fstore.Key) (array.RecordReader, error) {
		return &panickyReader{RecordReader: sample(cAlloc, 4, "p")}, nil
	})
	if err == nil || !strings.Contains(err.Error(), "panicked in Next: reader exploded") {
		t.Fatalf("panicking reader: %v", err)
	}
	if ok, _ := s.Contains(key); ok {
		t.Fatal("a panicking reader stored something")
	}
	if _, err := s.GetOrCompute(context.Background(), key, computeSample(2, "ok")); err != nil {
		t.Fatalf("retry after panics: %v", err)
	}
}

type panickyReader struct{ array.RecordReader }

func (p *panickyReader) Next() bool { panic("reader exploded") }

func TestComputeNilReaderIsInvalidData(t *testing.T) {
	s := openStore(t)
	key := testKey("NIL")
	_, err := s.GetOrCompute(context.Background(), key, func(context.Context, fstore.Key) (array.RecordReader, error) {
		return nil, nil
	})
	wantError(t, err, fstore.ErrInvalidData, "nil array.RecordReader")
	if ok, _ := s.Contains(key); ok {
		t.Fatal("a nil reader stored something")
	}
	if st := mustStats(t, s); st.ComputeFailures != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSingleFlightAcrossGoroutines(t *testing.T) {
	s := openStore(t)
	key := testKey("GOOGL")
	const callers = 16
	var runs atomic.Int32
	start := make(chan struct{})
	results := make([][]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			rdr, err := s.GetOrCompute(context.Background(), key, func(context.Context, fstore.Key) (array.RecordReader, error) {
				runs.Add(1)
				time.Sleep(200 * time.Millisecond)
				return sample(cAlloc, 30, "leader"), nil
			})
			if err != nil {
				errs[i] = err
				return
			}
			_, results[i] = table(t, rdr)
		})
	}
	close(start)
	wg.Wait()
	if n := runs.Load(); n != 1 {
		t.Fatalf("compute ran %d times, want 1", n)
	}
	_, want := expected(t, 30, "leader")
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if strings.Join(results[i], "\n") != strings.Join(want, "\n") {
			t.Fatalf("caller %d got different data", i)
		}
	}
	st := mustStats(t, s)
	if st.Computes != 1 || st.Hits+st.Misses != callers || st.Waits == 0 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("stats %+v", st)
}

// slowLeader starts a compute of key that sleeps for d and returns when it
// has started; the returned channel yields the leader's outcome.
func slowLeader(t *testing.T, s *fstore.Store, key fstore.Key, d time.Duration) <-chan error {
	t.Helper()
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		rdr, err := s.GetOrCompute(context.Background(), key, func(context.Context, fstore.Key) (array.RecordReader, error) {
			close(started)
			time.Sleep(d)
			return sample(cAlloc, 9, "slow"), nil
		})
		if err == nil {
			rdr.Release()
		}
		done <- err
	}()
	<-started
	return done
}

func mustNotCompute(t *testing.T) fstore.ComputeFunc {
	return func(context.Context, fstore.Key) (array.RecordReader, error) {
		t.Error("a waiter ran compute")
		return nil, errors.New("should not run")
	}
}

func TestCancelWaiter(t *testing.T) {
	s := openStore(t)
	key := testKey("TSLA")
	leader := slowLeader(t, s, key, 1500*time.Millisecond)

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	began := time.Now()
	_, err := s.GetOrCompute(ctx, key, mustNotCompute(t))
	took := time.Since(began)
	wantError(t, err, fstore.ErrCanceled, "cancelled")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("errors.Is(err, context.Canceled) is false: %v", err)
	}
	if took > 900*time.Millisecond {
		t.Fatalf("the cancelled waiter returned after %v", took)
	}
	t.Logf("cancelled 100ms in, the waiter returned after %v", took)
	if ok, _ := s.Contains(key); ok {
		t.Fatal("entry present before the leader finished")
	}
	if err := <-leader; err != nil {
		t.Fatalf("leader: %v", err)
	}
	if ok, err := s.Contains(key); err != nil || !ok {
		t.Fatalf("after the leader: Contains = %v, %v", ok, err)
	}
	st := mustStats(t, s)
	if st.Computes != 1 || st.Cancellations != 1 {
		t.Fatalf("stats %+v", st)
	}

	// A context already cancelled fails at once, even for a stored entry.
	_, err = s.Get(ctx, key)
	if !errors.Is(err, fstore.ErrCanceled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a cancelled context: %v", err)
	}
}

func TestTimeouts(t *testing.T) {
	s := openStore(t)
	key := testKey("ES=F")
	leader := slowLeader(t, s, key, 1500*time.Millisecond)

	began := time.Now()
	_, err := s.GetOrCompute(context.Background(), key, mustNotCompute(t), fstore.WithTimeout(150*time.Millisecond))
	took := time.Since(began)
	wantError(t, err, fstore.ErrTimeout, "gave up after 150 ms")
	if took < 140*time.Millisecond || took > 900*time.Millisecond {
		t.Fatalf("WithTimeout(150ms) returned after %v", took)
	}
	t.Logf("WithTimeout(150ms) returned after %v", took)

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	began = time.Now()
	_, err = s.GetOrCompute(ctx, key, mustNotCompute(t))
	took = time.Since(began)
	if !errors.Is(err, fstore.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ctx deadline: %v", err)
	}
	if took > 900*time.Millisecond {
		t.Fatalf("ctx deadline of 150ms returned after %v", took)
	}

	began = time.Now()
	_, err = s.GetOrCompute(context.Background(), key, mustNotCompute(t), fstore.WithTimeout(0))
	wantError(t, err, fstore.ErrTimeout, "gave up")
	if took := time.Since(began); took > 100*time.Millisecond {
		t.Fatalf("WithTimeout(0) waited %v", took)
	}

	if err := <-leader; err != nil {
		t.Fatalf("leader: %v", err)
	}
	if st := mustStats(t, s); st.Timeouts != 3 || st.Computes != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestClosedStore(t *testing.T) {
	s, err := fstore.Open(fstore.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err = s.Get(context.Background(), testKey("X"))
	wantError(t, err, fstore.ErrInvalidState, "closed")
	_, err = s.Stats()
	wantError(t, err, fstore.ErrInvalidState, "closed")
	if s.ManifestBackend() != "" {
		t.Fatal("a closed store names a backend")
	}
}
