package fstore_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/libfstore/libfstore/bindings/go/fstore"
)

// lockedBuffer is an io.Writer safe for the library's threads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestAFallbackFromPostgresIsASlogWarning(t *testing.T) {
	for _, name := range []string{"PG_MANIFEST_DSN", "PG_HOST", "PG_PORT", "PG_DATABASE", "PG_USER", "PG_PASSWORD"} {
		t.Setenv(name, "")
	}
	var out lockedBuffer
	fstore.SetLogger(slog.New(slog.NewTextHandler(&out, nil)))
	defer fstore.SetLogger(nil)
	store := openStore(t, fstore.WithOption("postgres.host", "127.0.0.1"), fstore.WithOption("postgres.port", "1"),
		fstore.WithOption("postgres.connect_timeout_ms", "300"))
	if got := store.ManifestBackend(); got != "duckdb" {
		t.Fatalf("backend %q, want duckdb", got)
	}
	text := out.String()
	if strings.Count(text, "level=WARN") != 1 || !strings.Contains(text, "127.0.0.1") || !strings.Contains(text, "DuckDB") ||
		!strings.Contains(text, "source=libfstore") {
		t.Fatalf("the fallback warning did not reach slog as one warning:\n%s", text)
	}
}
