package fstoreprom

import (
	"fmt"
	"math"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/libfstore/libfstore/bindings/go/fstore"
)

// Collector is a prometheus.Collector over one store's metrics.
type Collector struct {
	store *fstore.Store
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector collects the metrics of store at every scrape. Register it
// once per store; after the store is closed, scrapes report an error.
func NewCollector(store *fstore.Store) *Collector {
	return &Collector{store: store}
}

// Describe sends nothing, which makes the collector unchecked: which
// families and label values exist depends on the store's traffic (a
// symbol's first call, an error status, a PostgreSQL pool), so it cannot be
// described up front. The registry still checks every scrape for
// duplicates and inconsistent families.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect renders the store's metrics and sends them as constant metrics.
// A failure (a closed store) is sent as an invalid metric, which fails the
// registry's Gather with the library's message.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	families, err := c.families()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(prometheus.NewInvalidDesc(err), err)
		return
	}
	for _, family := range families {
		for _, m := range family.GetMetric() {
			metric, err := constMetric(family, m)
			if err != nil {
				metric = prometheus.NewInvalidMetric(prometheus.NewInvalidDesc(err), err)
			}
			ch <- metric
		}
	}
}

// families parses the library's exposition text.
func (c *Collector) families() (map[string]*dto.MetricFamily, error) {
	text, err := c.store.Metrics()
	if err != nil {
		return nil, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("fstoreprom: parsing the store's metrics: %w", err)
	}
	return families, nil
}

// constMetric is one parsed sample (a histogram's with its buckets) as a
// client_golang metric of the family's type.
func constMetric(family *dto.MetricFamily, m *dto.Metric) (prometheus.Metric, error) {
	names := make([]string, 0, len(m.GetLabel()))
	values := make([]string, 0, len(m.GetLabel()))
	for _, label := range m.GetLabel() {
		names = append(names, label.GetName())
		values = append(values, label.GetValue())
	}
	desc := prometheus.NewDesc(family.GetName(), family.GetHelp(), names, nil)
	switch family.GetType() {
	case dto.MetricType_COUNTER:
		return prometheus.NewConstMetric(desc, prometheus.CounterValue, m.GetCounter().GetValue(), values...)
	case dto.MetricType_GAUGE:
		return prometheus.NewConstMetric(desc, prometheus.GaugeValue, m.GetGauge().GetValue(), values...)
	case dto.MetricType_HISTOGRAM:
		h := m.GetHistogram()
		buckets := make(map[float64]uint64, len(h.GetBucket()))
		for _, b := range h.GetBucket() {
			if !math.IsInf(b.GetUpperBound(), +1) { // implied by the count
				buckets[b.GetUpperBound()] = b.GetCumulativeCount()
			}
		}
		return prometheus.NewConstHistogram(desc, h.GetSampleCount(), h.GetSampleSum(), buckets, values...)
	case dto.MetricType_SUMMARY:
		s := m.GetSummary()
		quantiles := make(map[float64]float64, len(s.GetQuantile()))
		for _, q := range s.GetQuantile() {
			quantiles[q.GetQuantile()] = q.GetValue()
		}
		return prometheus.NewConstSummary(desc, s.GetSampleCount(), s.GetSampleSum(), quantiles, values...)
	default:
		return prometheus.NewConstMetric(desc, prometheus.UntypedValue, m.GetUntyped().GetValue(), values...)
	}
}
