# Sourced by the C and C++ test scripts: a PostgreSQL server for their
# PostgreSQL tests. Needs $root (the repository).
#
#   fstore_pg_setup WHO SCHEMA_PREFIX SCRATCH_PARENT
#       uses FSTORE_TEST_PG_DSN, else starts a throwaway server under
#       SCRATCH_PARENT (tests/pg_server.sh); exports FSTORE_TEST_PG_DSN and
#       FSTORE_TEST_PG_SCHEMA (SCHEMA_PREFIX plus this shell's pid)
#   fstore_pg_cleanup
#       stops that server, or drops the tests' schemas from a given one

fstore_pg_dir=""

fstore_pg_setup() {
  local who=$1 pg_env
  export FSTORE_TEST_PG_SCHEMA=$2_$$
  [ -z "${FSTORE_TEST_PG_DSN:-}" ] || return 0
  # Not under a private scratch directory: the server may run as another
  # user, who must reach its directory.
  fstore_pg_dir=$(mktemp -d "${3:-/tmp}/fstore-pg.XXXXXX")
  pg_env=$("$root/tests/pg_server.sh" start "$fstore_pg_dir") || {
    echo "$who: cannot start a PostgreSQL server for the PostgreSQL tests (see above)," \
      "or set FSTORE_TEST_PG_DSN to an existing server" >&2
    return 1
  }
  eval "$pg_env"
  export FSTORE_TEST_PG_DSN
}

fstore_pg_cleanup() {
  if [ -n "$fstore_pg_dir" ]; then
    "$root/tests/pg_server.sh" stop "$fstore_pg_dir"
  elif [ -n "${FSTORE_TEST_PG_DSN:-}" ] && command -v psql >/dev/null; then
    # the tests' schemas: $FSTORE_TEST_PG_SCHEMA followed by a pid
    psql "$FSTORE_TEST_PG_DSN" -q >/dev/null 2>&1 <<SQL || true
DO \$\$ DECLARE s text; BEGIN
  FOR s IN SELECT nspname FROM pg_namespace WHERE nspname LIKE '${FSTORE_TEST_PG_SCHEMA}\\_%' LOOP
    EXECUTE 'DROP SCHEMA ' || quote_ident(s) || ' CASCADE';
  END LOOP;
END \$\$;
SQL
  fi
}
