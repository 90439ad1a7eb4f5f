package fstore_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/libfstore/libfstore/bindings/go/fstore"
)

// The worker processes of TestComputeOnceAcrossProcesses are this test
// binary, re-executed with these variables set.
const (
	helperEnv      = "FSTORE_GO_TEST_WORKER"
	helperCacheDir = "FSTORE_GO_TEST_CACHE_DIR"
	helperCross    = "FSTORE_GO_TEST_CROSS_PROCESS"
	helperLog      = "FSTORE_GO_TEST_COMPUTE_LOG"
	helperBarrier  = "FSTORE_GO_TEST_BARRIER_DIR"
	workerRows     = 25
	goexitWorker   = "goexit"
)

// runHelperProcess is a worker: open the store, report ready, wait for the
// go signal, then get-or-compute the key with a slow compute that logs one
// line per run.
func runHelperProcess() int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "worker %d: "+format+"\n", append([]any{os.Getpid()}, args...)...)
		return 1
	}
	store, err := fstore.Open(
		fstore.WithCacheDir(os.Getenv(helperCacheDir)),
		fstore.WithOption("lock.cross_process", os.Getenv(helperCross)),
		fstore.WithWaitTimeout(30*time.Second),
	)
	if err != nil {
		return fail("open: %v", err)
	}
	defer store.Close()

	barrier := os.Getenv(helperBarrier)
	ready := filepath.Join(barrier, "ready-"+strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(ready, nil, 0o644); err != nil {
		return fail("%v", err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(filepath.Join(barrier, "go")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fail("no go signal")
		}
	}

	rdr, err := store.GetOrCompute(context.Background(), testKey("BRK.B"), func(context.Context, fstore.Key) (array.RecordReader, error) {
		time.Sleep(300 * time.Millisecond)
		f, err := os.OpenFile(os.Getenv(helperLog), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if _, err := fmt.Fprintf(f, "computed by %d\n", os.Getpid()); err != nil {
			return nil, err
		}
		return sample(cAlloc, workerRows, "worker"), nil
	})
	if err != nil {
		return fail("get_or_compute: %v", err)
	}
	defer rdr.Release()
	rows := 0
	for rdr.Next() {
		rows += int(rdr.RecordBatch().NumRows())
	}
	if rdr.Err() != nil || rows != workerRows {
		return fail("read %d rows, err %v", rows, rdr.Err())
	}
	return 0
}

// runWorkers starts n workers on one missing key behind a barrier and
// returns the lines of the compute log.
func runWorkers(t *testing.T, n int, crossProcess bool) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cacheDir := filepath.Join(dir, "cache")
	barrier := filepath.Join(dir, "barrier")
	logPath := filepath.Join(dir, "computes.log")
	if err := os.Mkdir(barrier, 0o755); err != nil {
		t.Fatal(err)
	}
	workers := make([]*exec.Cmd, n)
	outputs := make([]*bytes.Buffer, n)
	for i := range workers {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(),
			helperEnv+"=1",
			helperCacheDir+"="+cacheDir,
			helperCross+"="+strconv.FormatBool(crossProcess),
			helperLog+"="+logPath,
			helperBarrier+"="+barrier,
		)
		outputs[i] = &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = outputs[i], outputs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		workers[i] = cmd
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ready, _ := filepath.Glob(filepath.Join(barrier, "ready-*"))
		if len(ready) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d workers got ready", len(ready), n)
		}
	}
	if err := os.WriteFile(filepath.Join(barrier, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, cmd := range workers {
		if err := cmd.Wait(); err != nil {
			t.Errorf("worker %d: %v\n%s", i, err, outputs[i])
		}
	}
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(raw)), "\n")
}

func TestComputeOnceAcrossProcesses(t *testing.T) {
	const n = 4
	t.Run("cross_process=true", func(t *testing.T) {
		lines := runWorkers(t, n, true)
		if len(lines) != 1 {
			t.Fatalf("%d processes computed, want exactly 1: %q", len(lines), lines)
		}
	})
	t.Run("cross_process=false", func(t *testing.T) {
		lines := runWorkers(t, n, false)
		if len(lines) < 2 {
			t.Fatalf("without the cross-process lock %d of %d processes computed, want more than 1", len(lines), n)
		}
		t.Logf("%d of %d processes computed", len(lines), n)
	})
}

// runGoexitProcess calls runtime.Goexit in a compute, as t.FailNow would.
// Goexit cannot be recovered, and unwinding it through the library would
// skip the library's cleanup: the process must end at once instead.
func runGoexitProcess() int {
	store, err := fstore.Open(fstore.WithCacheDir(os.Getenv(helperCacheDir)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = store.GetOrCompute(context.Background(), testKey("GOEXIT"), func(context.Context, fstore.Key) (array.RecordReader, error) {
			runtime.Goexit()
			return nil, nil
		})
	}()
	select {
	case <-done:
		fmt.Println("the goroutine ended and the process went on")
	case <-time.After(10 * time.Second):
		fmt.Println("the goroutine hung")
	}
	return 0
}

func TestGoexitInComputeEndsTheProcess(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+goexitWorker, helperCacheDir+"="+t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if err == nil {
		t.Fatalf("the process went on after runtime.Goexit left a callback from the library:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "runtime.Goexit (t.FailNow, t.Fatal, ...) is leaving the compute callback") {
		t.Fatalf("exit %v without the reason:\n%s", err, out.String())
	}
	t.Logf("exit: %v", err)
}
