package fstore_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/libfstore/libfstore/bindings/go/fstore"
)

// A PostgreSQL failure carries the server's SQLSTATE; other failures none.
func TestErrorSqlstate(t *testing.T) {
	_, err := openStore(t).Get(context.Background(), testKey("ABSENT"))
	var e *fstore.Error
	if !errors.As(err, &e) || e.Status != fstore.StatusNotFound || e.Sqlstate != "" {
		t.Fatalf("Get of an absent key: %#v, want ErrNotFound with no SQLSTATE", err)
	}

	dsn := os.Getenv("FSTORE_TEST_PG_DSN")
	if dsn == "" {
		t.Skip("set FSTORE_TEST_PG_DSN to a PostgreSQL server (tests/run_all.sh starts one)")
	}
	_, err = fstore.Open(fstore.WithCacheDir(t.TempDir()), fstore.WithOption("manifest", "postgres"),
		fstore.WithOption("postgres.dsn", dsn+" dbname=fstore_go_no_such_database"))
	if !errors.As(err, &e) {
		t.Fatalf("Open of a database that does not exist: %v, want an *Error", err)
	}
	t.Logf("Open: %v", err)
	if e.Sqlstate != "3D000" { // invalid_catalog_name
		t.Fatalf("Sqlstate %q, want 3D000: %v", e.Sqlstate, err)
	}
}
