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

// openFallbackStore opens a store under manifest=auto whose PostgreSQL
// server does not answer (a closed port), so that it falls back to DuckDB.
func openFallbackStore(t *testing.T) *fstore.Store {
	t.Helper()
	clearPostgresEnv(t)
	store := openStore(t, fstore.WithOption("manifest", "auto"), fstore.WithOption("postgres.host", "127.0.0.1"),
		fstore.WithOption("postgres.port", "1"), fstore.WithOption("postgres.connect_timeout_ms", "300"))
	if got := store.ManifestBackend(); got != "duckdb" {
		t.Fatalf("backend %q, want duckdb", got)
	}
	return store
}

// wantFallbackWarning checks that warnings hold one line saying the store
// fell back from the unreachable server to DuckDB.
func wantFallbackWarning(t *testing.T, warnings []string) {
	t.Helper()
	if len(warnings) != 1 || !strings.Contains(warnings[0], "127.0.0.1") || !strings.Contains(warnings[0], "DuckDB") {
		t.Fatalf("Warnings() = %q, want one line on the fallback from 127.0.0.1 to DuckDB", warnings)
	}
}

func TestAFallbackFromPostgresIsASlogWarning(t *testing.T) {
	var out lockedBuffer
	fstore.SetLogger(slog.New(slog.NewTextHandler(&out, nil)))
	defer fstore.SetLogger(nil)
	store := openFallbackStore(t)
	text := out.String()
	if strings.Count(text, "level=WARN") != 1 || !strings.Contains(text, "127.0.0.1") || !strings.Contains(text, "DuckDB") ||
		!strings.Contains(text, "source=libfstore") {
		t.Fatalf("the fallback warning did not reach slog as one warning:\n%s", text)
	}
	warnings := store.Warnings()
	wantFallbackWarning(t, warnings)
	if !strings.Contains(text, warnings[0]) {
		t.Fatalf("slog got %q, not the store's warning %q", text, warnings[0])
	}
	// The caller's copy is its own, and the warnings outlive Close.
	warnings[0] = "changed"
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	wantFallbackWarning(t, store.Warnings())
}

func TestAStoreThatOpensAsConfiguredHasNoWarnings(t *testing.T) {
	clearPostgresEnv(t)
	if got := openStore(t).Warnings(); got != nil {
		t.Fatalf("Warnings() = %q, want none", got)
	}
}

func TestSetLogLevelFiltersTheLogButNotTheWarnings(t *testing.T) {
	var out lockedBuffer
	fstore.SetLogger(slog.New(slog.NewTextHandler(&out, nil)))
	defer fstore.SetLogger(nil)
	defer func() {
		if err := fstore.SetLogLevel(fstore.LogWarn); err != nil { // the default
			t.Error(err)
		}
	}()

	if err := fstore.SetLogLevel(fstore.LogError); err != nil {
		t.Fatal(err)
	}
	wantFallbackWarning(t, openFallbackStore(t).Warnings())
	if text := out.String(); text != "" {
		t.Fatalf("at level error, slog received:\n%s", text)
	}

	if err := fstore.SetLogLevel(fstore.LogWarn); err != nil {
		t.Fatal(err)
	}
	openFallbackStore(t)
	if text := out.String(); strings.Count(text, "level=WARN") != 1 {
		t.Fatalf("at level warn, slog received:\n%s", text)
	}

	wantError(t, fstore.SetLogLevel(fstore.LogTrace+1), fstore.ErrInvalidArgument, "6")
}
