package fstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/libfstore/libfstore/bindings/go/fstore"
)

func TestMetricsCountTheCallsMade(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	key := testKey("GOMETRICS")
	for i := 0; i < 3; i++ { // a miss and a compute, then two hits
		rdr, err := store.GetOrCompute(ctx, key, computeSample(5, "m"))
		if err != nil {
			t.Fatal(err)
		}
		rdr.Release()
	}
	text, err := store.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`featurestore_hits_total{symbol="GOMETRICS"} 2`,
		`featurestore_misses_total{symbol="GOMETRICS"} 1`,
		`featurestore_computes_total{feature_set="go-binding-test"} 1`,
		`featurestore_get_seconds_count{feature_set="go-binding-test"} 3`,
		`featurestore_info{version="` + fstore.Version() + `",backend="duckdb"} 1`,
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("missing %q in:\n%s", line, text)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = store.Metrics()
	wantError(t, err, fstore.ErrInvalidState, "closed")
}
