package fstore_test

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/libfstore/libfstore/bindings/go/fstore"
)

func TestPoolAndLockStatsAreForPostgresOnly(t *testing.T) {
	embedded := openStore(t)
	if stats, ok, err := embedded.PoolStats(); ok || err != nil || stats != (fstore.PoolStats{}) {
		t.Fatalf("PoolStats of an embedded store: %+v, %v, %v; want not ok", stats, ok, err)
	}
	if stats, ok, err := embedded.LockStats(); ok || err != nil || stats != (fstore.LockStats{}) {
		t.Fatalf("LockStats of an embedded store: %+v, %v, %v; want not ok", stats, ok, err)
	}

	store := openStore(t, postgresOptions(t, "stats")...)
	pool, ok, err := store.PoolStats()
	if !ok || err != nil || pool.Size == 0 || pool.Idle+pool.InUse != pool.Size {
		t.Fatalf("PoolStats: %+v, %v, %v", pool, ok, err)
	}
	// A compute holds its symbol's advisory lock: counted while it runs, and
	// nothing else in this database takes advisory locks meanwhile.
	var during fstore.LockStats
	rdr, err := store.GetOrCompute(context.Background(), testKey("GOLOCKS"), func(context.Context, fstore.Key) (array.RecordReader, error) {
		stats, ok, err := store.LockStats()
		if !ok || err != nil {
			t.Errorf("LockStats in a compute: %v, %v", ok, err)
		}
		during = stats
		return sample(cAlloc, 2, "l"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rdr.Release()
	after, ok, err := store.LockStats()
	if !ok || err != nil || during.Held < 1 || after.Held != 0 || after.Waiting != 0 {
		t.Fatalf("advisory locks held during a compute %+v, after %+v (%v, %v)", during, after, ok, err)
	}

	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, err = store.PoolStats()
	wantError(t, err, fstore.ErrInvalidState, "closed")
	_, _, err = store.LockStats()
	wantError(t, err, fstore.ErrInvalidState, "closed")
}

func TestMigrateSchemaLetsWorkersOpenWithoutDDL(t *testing.T) {
	opts := append(postgresOptions(t, "schema"), fstore.WithOption("postgres.auto_migrate", "false"))
	_, err := fstore.Open(append(opts, fstore.WithCacheDir(t.TempDir()))...)
	wantError(t, err, fstore.ErrInvalidState, "fstore_migrate_schema")
	for range 2 { // idempotent
		if err := fstore.MigrateSchema(opts...); err != nil {
			t.Fatalf("MigrateSchema: %v", err)
		}
	}
	store := openStore(t, opts...)
	if err := store.Put(testKey("GOMIGRATE"), sample(cAlloc, 2, "m")); err != nil {
		t.Fatal(err)
	}

	clearPostgresEnv(t)
	err = fstore.MigrateSchema(fstore.WithOption("manifest", "postgres"))
	wantError(t, err, fstore.ErrInvalidArgument, "no PostgreSQL server configured")
	err = fstore.MigrateSchema(fstore.WithOption("postgres.pool_max", "many"))
	wantError(t, err, fstore.ErrInvalidArgument, "postgres.pool_max")
}

func TestMigrateManifestMovesAnEmbeddedCacheToPostgres(t *testing.T) {
	dir := t.TempDir()
	embedded, err := fstore.Open(fstore.WithCacheDir(dir), fstore.WithOption("manifest", "duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	symbols := []string{"AAPL", "MSFT"}
	for _, symbol := range symbols {
		if err := embedded.Put(testKey(symbol), sample(cAlloc, 3, symbol)); err != nil {
			t.Fatal(err)
		}
	}
	if err := embedded.Close(); err != nil {
		t.Fatal(err)
	}

	opts := append(postgresOptions(t, "manifest"), fstore.WithCacheDir(dir))
	report, err := fstore.MigrateManifest(opts...)
	if err != nil || report != (fstore.MigrationReport{RowsRead: 2, Inserted: 2}) {
		t.Fatalf("MigrateManifest: %+v, %v; want 2 rows read and inserted", report, err)
	}
	report, err = fstore.MigrateManifest(opts...)
	if err != nil || report != (fstore.MigrationReport{RowsRead: 2, AlreadyPresent: 2}) {
		t.Fatalf("MigrateManifest again: %+v, %v; want 2 rows already present", report, err)
	}

	// The directory now belongs to PostgreSQL, which lists the entries.
	store := openStore(t, opts...)
	if got := store.ManifestBackend(); got != "postgres" {
		t.Fatalf("backend %q", got)
	}
	if got := entryPaths(t, store); len(got) != 2 || got["AAPL"] == "" || got["MSFT"] == "" {
		t.Fatalf("PostgreSQL lists %v", got)
	}
	_, err = fstore.Open(fstore.WithCacheDir(dir), fstore.WithOption("manifest", "duckdb"))
	wantError(t, err, fstore.ErrInvalidState, "postgres")

	clearPostgresEnv(t)
	_, err = fstore.MigrateManifest(fstore.WithCacheDir(t.TempDir()))
	wantError(t, err, fstore.ErrInvalidArgument, "no PostgreSQL server configured")
}
