package fstoreprom_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory/mallocator"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/libfstore/libfstore/bindings/go/fstore"
	fstoreprom "github.com/libfstore/libfstore/bindings/go/fstore/prometheus"
)

const featureSet = "go-prometheus-test"

// cAlloc keeps the data handed to the store in C memory (cgo's pointer rules).
var cAlloc = mallocator.NewMallocator()

func key(symbol string) fstore.Key {
	return fstore.Key{
		FeatureSet: featureSet,
		Symbol:     symbol,
		Start:      time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC),
		End:        time.Date(2024, 3, 28, 0, 0, 0, 0, time.UTC),
	}
}

func compute(context.Context, fstore.Key) (array.RecordReader, error) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "price", Type: arrow.PrimitiveTypes.Float64}}, nil)
	b := array.NewRecordBuilder(cAlloc, schema)
	defer b.Release()
	b.Field(0).(*array.Float64Builder).AppendValues([]float64{1, 2, 3}, nil)
	batch := b.NewRecordBatch()
	defer batch.Release()
	return array.NewRecordReader(schema, []arrow.RecordBatch{batch})
}

// trafficStore is a store after a known sequence of calls: AAPL computed
// once and hit twice, MSFT computed once, one Get of an absent key.
func trafficStore(t *testing.T) *fstore.Store {
	t.Helper()
	store, err := fstore.Open(fstore.WithCacheDir(t.TempDir()), fstore.WithOption("manifest", "duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for _, symbol := range []string{"AAPL", "AAPL", "AAPL", "MSFT"} {
		rdr, err := store.GetOrCompute(context.Background(), key(symbol), compute)
		if err != nil {
			t.Fatal(err)
		}
		rdr.Release()
	}
	if _, err := store.Get(context.Background(), key("ABSENT")); !errors.Is(err, fstore.ErrNotFound) {
		t.Fatalf("Get of an absent key: %v", err)
	}
	return store
}

func labels(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// series finds the family name and, in it, the series with these labels.
func series(t *testing.T, families []*dto.MetricFamily, name string, want dto.MetricType, labelText string) *dto.Metric {
	t.Helper()
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		if f.GetType() != want {
			t.Fatalf("%s is a %v, want a %v", name, f.GetType(), want)
		}
		for _, m := range f.GetMetric() {
			if labels(m) == labelText {
				return m
			}
		}
		t.Fatalf("%s has no series {%s}", name, labelText)
	}
	t.Fatalf("no family %s", name)
	return nil
}

// checkTraffic checks the families of trafficStore's calls.
func checkTraffic(t *testing.T, families []*dto.MetricFamily) {
	t.Helper()
	counters := []struct {
		name, labels string
		want         float64
	}{
		{"featurestore_hits_total", "symbol=AAPL", 2},
		{"featurestore_misses_total", "symbol=AAPL", 1},
		{"featurestore_misses_total", "symbol=MSFT", 1},
		{"featurestore_computes_total", "feature_set=" + featureSet, 2},
	}
	for _, c := range counters {
		if got := series(t, families, c.name, dto.MetricType_COUNTER, c.labels).GetCounter().GetValue(); got != c.want {
			t.Errorf("%s{%s} = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	info := series(t, families, "featurestore_info", dto.MetricType_GAUGE, "backend=duckdb,version="+fstore.Version())
	if info.GetGauge().GetValue() != 1 {
		t.Errorf("featurestore_info = %v, want 1", info.GetGauge().GetValue())
	}
	for name, calls := range map[string]uint64{"featurestore_get_seconds": 5, "featurestore_compute_seconds": 2} {
		h := series(t, families, name, dto.MetricType_HISTOGRAM, "feature_set="+featureSet).GetHistogram()
		if h.GetSampleCount() != calls || h.GetSampleSum() <= 0 || len(h.GetBucket()) < 2 {
			t.Errorf("%s: count %d (want %d), sum %v, %d buckets", name, h.GetSampleCount(), calls, h.GetSampleSum(), len(h.GetBucket()))
		}
		for i, b := range h.GetBucket() {
			if b.GetCumulativeCount() > calls || (i > 0 && b.GetCumulativeCount() < h.GetBucket()[i-1].GetCumulativeCount()) {
				t.Errorf("%s: bucket le=%v holds %d of %d calls", name, b.GetUpperBound(), b.GetCumulativeCount(), calls)
			}
		}
	}
}

// parsed is the library's own exposition text, parsed.
func parsed(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parsing %q: %v", text, err)
	}
	return families
}

func TestCollectorForwardsEveryFamilyWithItsType(t *testing.T) {
	store := trafficStore(t)
	registry := prometheus.NewRegistry()
	registry.MustRegister(fstoreprom.NewCollector(store))
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	checkTraffic(t, families)

	// Nothing lost or changed on the way: every family of the library's
	// text, with its type, help, series and buckets.
	text, err := store.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	want := parsed(t, text)
	if len(families) != len(want) {
		t.Errorf("gathered %d families, the library renders %d", len(families), len(want))
	}
	for _, got := range families {
		w, ok := want[got.GetName()]
		if !ok {
			t.Errorf("gathered %s, which the library does not render", got.GetName())
			continue
		}
		if got.GetType() != w.GetType() || got.GetHelp() != w.GetHelp() || len(got.GetMetric()) != len(w.GetMetric()) {
			t.Errorf("%s: %v %q with %d series, want %v %q with %d", got.GetName(), got.GetType(), got.GetHelp(),
				len(got.GetMetric()), w.GetType(), w.GetHelp(), len(w.GetMetric()))
		}
		if got.GetType() == dto.MetricType_HISTOGRAM {
			for i, m := range got.GetMetric() {
				// The parser keeps the +Inf bucket, which a histogram implies.
				if len(m.GetHistogram().GetBucket())+1 != len(w.GetMetric()[i].GetHistogram().GetBucket()) {
					t.Errorf("%s{%s}: %d buckets, the library renders %d with +Inf", got.GetName(), labels(m),
						len(m.GetHistogram().GetBucket()), len(w.GetMetric()[i].GetHistogram().GetBucket()))
				}
			}
		}
	}

	// A closed store fails the scrape with the library's message.
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := registry.Gather(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Gather after Close: %v, want the store's error", err)
	}
}

func TestPromhttpServesTheStoresMetrics(t *testing.T) {
	store := trafficStore(t)
	registry := prometheus.NewRegistry()
	registry.MustRegister(fstoreprom.NewCollector(store))
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := &http.Server{
		Handler:           promhttp.HandlerFor(registry, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go server.Serve(listener)
	defer server.Close()

	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + listener.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s, %v:\n%s", resp.Status, err, body)
	}
	var families []*dto.MetricFamily
	for _, f := range parsed(t, string(body)) {
		families = append(families, f)
	}
	checkTraffic(t, families)
}
