package fstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/libfstore/libfstore/bindings/go/fstore"
)

// recoverLikeNetHTTP runs call the way net/http runs a handler: a panic
// that escapes it is recovered and the program goes on.
func recoverLikeNetHTTP(call func() error) (err error, escaped any) {
	defer func() {
		if r := recover(); r != nil {
			escaped = r
		}
	}()
	return call(), nil
}

// panicsIn is a reader over sample data whose method named method panics.
type panicsIn struct {
	array.RecordReader
	method string
}

func (p *panicsIn) explode(method string) {
	if p.method == method {
		panic(fmt.Sprintf("%s exploded", method))
	}
}

func (p *panicsIn) Schema() *arrow.Schema { p.explode("Schema"); return p.RecordReader.Schema() }
func (p *panicsIn) Next() bool            { p.explode("Next"); return p.RecordReader.Next() }
func (p *panicsIn) Err() error            { p.explode("Err"); return p.RecordReader.Err() }
func (p *panicsIn) Release()              { p.explode("Release"); p.RecordReader.Release() }

func (p *panicsIn) RecordBatch() arrow.RecordBatch {
	p.explode("RecordBatch")
	return p.RecordReader.RecordBatch()
}

func (p *panicsIn) Record() arrow.RecordBatch {
	p.explode("Record")
	return p.RecordReader.Record()
}

// unexportable is a reader whose schema arrow-go's exporter panics on
// (time32 has no microsecond unit).
func unexportable() array.RecordReader {
	schema := arrow.NewSchema([]arrow.Field{{Name: "t", Type: &arrow.Time32Type{Unit: arrow.Microsecond}}}, nil)
	rdr, err := array.NewRecordReader(schema, nil)
	if err != nil {
		panic(err)
	}
	return rdr
}

// Every panic under a callback from the library becomes the call's error,
// and the key is not left wedged: the next call of it computes at once.
// (A panic unwinding through the library skipped its cleanup, so the next
// call waited for a compute that had ended, until the store's wait timeout.)
func TestPanicsUnderCallbacksFailTheComputeAndLeaveTheKeyUsable(t *testing.T) {
	cases := []struct {
		site    string
		compute fstore.ComputeFunc
		says    string
	}{
		{"compute", func(context.Context, fstore.Key) (array.RecordReader, error) { panic("compute exploded") },
			"compute panicked: compute exploded"},
		{"Schema", panicking("Schema"), "the compute's reader panicked in Schema: Schema exploded"},
		{"Next", panicking("Next"), "the compute's reader panicked in Next: Next exploded"},
		{"RecordBatch", panicking("RecordBatch"), "the compute's reader panicked in RecordBatch: RecordBatch exploded"},
		{"Err", panicking("Err"), "the compute's reader panicked in Err: Err exploded"},
		{"Release", panicking("Release"), "the compute's reader panicked in Release: Release exploded"},
		{"arrow-go's exporter", func(context.Context, fstore.Key) (array.RecordReader, error) { return unexportable(), nil },
			"arrow-go cannot export the compute's schema: invalid time unit for time32"},
	}
	// A short wait: a wedged key shows as a timeout of the retry, not a hang.
	s := openStore(t, fstore.WithWaitTimeout(2*time.Second))
	for _, c := range cases {
		t.Run(c.site, func(t *testing.T) {
			key := testKey("PANIC-" + strings.ReplaceAll(c.site, " ", "-"))
			err, escaped := recoverLikeNetHTTP(func() error {
				rdr, err := s.GetOrCompute(context.Background(), key, c.compute)
				if err == nil {
					rdr.Release()
				}
				return err
			})
			if escaped != nil {
				t.Errorf("the panic escaped GetOrCompute: %v", escaped)
			} else {
				wantError(t, err, fstore.ErrCallbackFailed, c.says)
			}
			if ok, err := s.Contains(key); err != nil || ok {
				t.Errorf("after the panic Contains = %v, %v", ok, err)
			}
			began := time.Now()
			rdr, err := s.GetOrCompute(context.Background(), key, computeSample(3, "after"))
			if err != nil {
				t.Fatalf("the next call of the key failed after %v: %v", time.Since(began), err)
			}
			wantCols, wantRows := expected(t, 3, "after")
			cols, rows := table(t, rdr)
			sameTable(t, "after the panic", cols, rows, wantCols, wantRows)
		})
	}
}

func panicking(method string) fstore.ComputeFunc {
	return func(context.Context, fstore.Key) (array.RecordReader, error) {
		return &panicsIn{RecordReader: sample(cAlloc, 4, "p"), method: method}, nil
	}
}

// A compute that fails and panics releasing its reader reports both.
func TestComputeErrorAndReleasePanicAreBothReported(t *testing.T) {
	s := openStore(t)
	errUpstream := errors.New("upstream is down")
	_, err := s.GetOrCompute(context.Background(), testKey("BOTH"), func(context.Context, fstore.Key) (array.RecordReader, error) {
		return &panicsIn{RecordReader: sample(cAlloc, 1, "x"), method: "Release"}, errUpstream
	})
	wantError(t, err, fstore.ErrCallbackFailed, "Release exploded")
	if !errors.Is(err, errUpstream) {
		t.Fatalf("errors.Is(err, the compute's error) is false: %v", err)
	}
}

// Put reads the caller's reader through the library: a panic in it is
// Put's error, and the store goes on.
func TestPutReaderPanicsAreErrors(t *testing.T) {
	s := openStore(t, fstore.WithWaitTimeout(2*time.Second))
	for _, method := range []string{"Schema", "Next", "RecordBatch", "Err"} {
		t.Run(method, func(t *testing.T) {
			key := testKey("PUT-" + method)
			rdr := &panicsIn{RecordReader: sample(cAlloc, 4, "p"), method: method}
			err, escaped := recoverLikeNetHTTP(func() error { return s.Put(key, rdr) })
			rdr.RecordReader.Release()
			if escaped != nil {
				t.Fatalf("the panic escaped Put: %v", escaped)
			}
			wantError(t, err, fstore.ErrInvalidData, "the reader panicked in "+method+": "+method+" exploded")
			if ok, _ := s.Contains(key); ok {
				t.Fatal("a panicking reader stored something")
			}
			if err := s.Put(key, sample(cAlloc, 2, "ok")); err != nil {
				t.Fatalf("Put after the panic: %v", err)
			}
			rdr2, err := s.GetOrCompute(context.Background(), key, mustNotCompute(t))
			if err != nil {
				t.Fatal(err)
			}
			rdr2.Release()
		})
	}
	t.Run("arrow-go's exporter", func(t *testing.T) {
		key := testKey("PUT-EXPORT")
		rdr := unexportable()
		defer rdr.Release()
		err, escaped := recoverLikeNetHTTP(func() error { return s.Put(key, rdr) })
		if escaped != nil {
			t.Fatalf("the panic escaped Put: %v", escaped)
		}
		wantError(t, err, fstore.ErrInvalidData, "arrow-go panicked exporting the schema: invalid time unit for time32")
	})
	t.Run("Release", func(t *testing.T) {
		// Put borrows the reader: releasing it stays with the caller.
		rdr := &panicsIn{RecordReader: sample(cAlloc, 4, "p"), method: "Release"}
		defer rdr.RecordReader.Release()
		err, escaped := recoverLikeNetHTTP(func() error { return s.Put(testKey("PUT-RELEASE"), rdr) })
		if escaped != nil || err != nil {
			t.Fatalf("Put = %v, escaped %v", err, escaped)
		}
	})
}
