package fstore

/*
#include "fstore.h"
*/
import "C"

import "unsafe"

// MigrateSchema creates or upgrades libfstore's PostgreSQL schema (option
// postgres.schema) in the server that opts name, for deployments whose
// workers open their stores with postgres.auto_migrate=false because they
// hold no DDL rights. It takes the options Open takes.
func MigrateSchema(opts ...Option) error {
	options, err := newOptions(opts)
	if err != nil {
		return err
	}
	defer C.fstore_options_free(&options)
	var cerr C.fstore_error
	if status := C.fstore_migrate_schema(options, &cerr); status != C.FSTORE_STATUS_OK {
		return takeError(status, &cerr)
	}
	return nil
}

// MigrationReport says what MigrateManifest copied.
type MigrationReport struct {
	RowsRead       uint64 // rows of the embedded manifest
	Inserted       uint64 // rows added to PostgreSQL
	AlreadyPresent uint64 // rows PostgreSQL already had (an earlier run, or published there since)
}

// MigrateManifest copies the embedded (DuckDB) manifest of the cache
// directory that opts name into the PostgreSQL server they name, backing
// the DuckDB file up first, and binds the directory to PostgreSQL: stores
// opened on it from then on must use that server. Idempotent, and safe
// while workers run. It takes the options Open takes.
func MigrateManifest(opts ...Option) (MigrationReport, error) {
	options, err := newOptions(opts)
	if err != nil {
		return MigrationReport{}, err
	}
	defer C.fstore_options_free(&options)
	var out C.fstore_migration_report
	var cerr C.fstore_error
	if status := C.fstore_migrate_manifest(options, &out, C.size_t(unsafe.Sizeof(out)), &cerr); status != C.FSTORE_STATUS_OK {
		return MigrationReport{}, takeError(status, &cerr)
	}
	return MigrationReport{
		RowsRead:       uint64(out.rows_read),
		Inserted:       uint64(out.inserted),
		AlreadyPresent: uint64(out.already_present),
	}, nil
}
