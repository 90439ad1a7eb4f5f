#!/usr/bin/env bash
# A Go module outside the repository that uses the Prometheus collector the
# way a user's would: `go get` of the collector module and the fstore module,
# both served by a local module proxy (module_proxy.sh) from this tree, with
# the collector's go.mod as published (no workspace, no replace). The
# program opens a store, makes a hit and a miss, serves promhttp on a
# loopback port and checks a scrape.
#
#   bindings/go/test_outside_collector.sh
#
# Environment: FSTORE_LIB_DIR (see cgo_env.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
lib_dir=$(. "$here/cgo_env.sh" && echo "$lib_dir")
unset CGO_CFLAGS CGO_CPPFLAGS PKG_CONFIG_PATH LD_LIBRARY_PATH GOWORK
export CGO_ENABLED=1 CGO_LDFLAGS="-L$lib_dir -Wl,-rpath,$lib_dir"
# -trimpath: the scratch module cache below has a new path every run, and
# without it the build cache would miss on every dependency.
export GOFLAGS="-buildvcs=false -modcacherw -trimpath -tags=fstore_nopkgconfig" GOWORK=off

core=github.com/libfstore/libfstore/bindings/go/fstore
collector=$core/prometheus
# The collector's go.mod requires the core's release, so the stand-in
# releases sort after it: pre-releases of the next patch, unique to this run.
required=$(sed -n "s|^[[:space:]]*$core \(v[^ ]*\)\$|\1|p" "$here/fstore/prometheus/go.mod")
[ -n "$required" ] || { echo "error: bindings/go/fstore/prometheus/go.mod does not require $core" >&2; exit 1; }
IFS=. read -r major minor patch <<<"${required#v}"
version=v$major.$minor.$((patch + 1))-0.outside.$(date +%s).$$
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fstore-go-collector.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
modcache=$(go env GOMODCACHE)

echo "go collector outside: a local module proxy serving $core and $collector at $version"
"$here/module_proxy.sh" "$here/fstore" "$core" "$version" "$scratch/proxy"
"$here/module_proxy.sh" "$here/fstore/prometheus" "$collector" "$version" "$scratch/proxy"

mkdir "$scratch/consumer"
cd "$scratch/consumer"
cat > main.go <<'GO'
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory/mallocator"
	"github.com/libfstore/libfstore/bindings/go/fstore"
	fstoreprom "github.com/libfstore/libfstore/bindings/go/fstore/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run() error {
	dir, err := os.MkdirTemp("", "fstore-collector-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := fstore.Open(fstore.WithCacheDir(dir))
	if err != nil {
		return err
	}
	defer store.Close()
	key := fstore.Key{FeatureSet: "outside", Symbol: "SCRAPE",
		Start: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), End: time.Date(2024, 1, 5, 0, 0, 0, 0, time.UTC)}
	compute := func(context.Context, fstore.Key) (array.RecordReader, error) {
		schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
		b := array.NewRecordBuilder(mallocator.NewMallocator(), schema)
		defer b.Release()
		b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2}, nil)
		batch := b.NewRecordBatch()
		defer batch.Release()
		return array.NewRecordReader(schema, []arrow.RecordBatch{batch})
	}
	for range 2 { // a miss, then a hit
		rdr, err := store.GetOrCompute(context.Background(), key, compute)
		if err != nil {
			return err
		}
		rdr.Release()
	}

	registry := prometheus.NewRegistry()
	registry.MustRegister(fstoreprom.NewCollector(store))
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	server := &http.Server{Handler: promhttp.HandlerFor(registry, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go server.Serve(listener)
	defer server.Close()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + listener.Addr().String() + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	for _, line := range []string{
		"# TYPE featurestore_hits_total counter",
		`featurestore_hits_total{symbol="SCRAPE"} 1`,
		`featurestore_misses_total{symbol="SCRAPE"} 1`,
		`featurestore_get_seconds_count{feature_set="outside"} 2`,
	} {
		if !strings.Contains(string(body), line+"\n") {
			return fmt.Errorf("the scrape (%s) lacks %q:\n%s", resp.Status, line, body)
		}
	}
	fmt.Println("scraped", len(body), "bytes: hits, misses and the latency histogram as expected")
	return nil
}
GO
go mod init example.com/scraper >/dev/null 2>&1
# A module cache of this run's own, so that the stand-in releases never
# reach the user's; the user's cache serves the other dependencies, so
# nothing is downloaded. GONOSUMDB: the checksum database does not know
# the stand-in releases.
export GOMODCACHE="$scratch/modcache"
# The user's checksum-database tiles too, so that verifying the other
# dependencies needs no new look-ups.
if [ -d "$modcache/cache/download/sumdb" ]; then
  mkdir -p "$GOMODCACHE/cache/download"
  cp -r "$modcache/cache/download/sumdb" "$GOMODCACHE/cache/download/"
fi
export GOPROXY="file://$scratch/proxy,file://$modcache/cache/download" GONOSUMDB=$core
go get "$core@$version" "$collector@$version"
go build ./... # the requirements go get added suffice: no tidy, which fetches every dependency's test dependencies
grep -q "^	$core $version\( \|\$\)" go.mod || { echo "error: the consumer did not select $core@$version:" >&2; cat go.mod >&2; exit 1; }
go vet .
go build -o scraper .
./scraper
echo "go collector outside: ok"
