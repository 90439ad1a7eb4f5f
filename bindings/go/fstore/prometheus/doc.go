// Package fstoreprom exposes a libfstore store's metrics to a Prometheus
// client_golang registry:
//
//	store, err := fstore.Open()
//	...
//	prometheus.MustRegister(fstoreprom.NewCollector(store))
//	http.Handle("/metrics", promhttp.Handler())
//
// It is a module of its own, so that the fstore module does not depend on
// client_golang. The package is named fstoreprom, not prometheus, so that it
// sits beside client_golang's prometheus package without an alias.
//
// The collector does not count anything itself: each scrape renders the
// library's exposition text (Store.Metrics), parses it with expfmt and
// forwards every family with its type (counter, gauge, histogram with its
// buckets), help text, labels and values as constant metrics.
package fstoreprom
