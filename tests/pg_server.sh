#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests, or stops it.
#
#   eval "$(tests/pg_server.sh start DIR)"   # prints the variables to export
#   tests/pg_server.sh start DIR ADDRESS      # listens on ADDRESS instead of 127.0.0.1
#   tests/pg_server.sh stop DIR
#
# With an ADDRESS (say a bridge's, for clients in other network namespaces)
# the server also accepts password logins from the subnets it is attached to.
# initdb refuses to run as root, so as root the server runs as the `postgres`
# user. The server's binaries are found through pg_config, Debian's versioned
# directory, or PATH.
set -euo pipefail

find_bindir() {
  local dir
  if command -v pg_config >/dev/null 2>&1; then
    dir=$(pg_config --bindir)
    [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  fi
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  command -v initdb >/dev/null 2>&1 && { dirname "$(readlink -f "$(command -v initdb)")"; return; }
  return 1
}

as_server_user() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cmd=${1:?usage: pg_server.sh start|stop DIR [ADDRESS]}
dir=${2:?usage: pg_server.sh start|stop DIR [ADDRESS]}
address=${3:-127.0.0.1}

case $cmd in
  start)
    bindir=$(find_bindir) || {
      echo "error: PostgreSQL's server binaries (initdb, pg_ctl) are not installed;" \
        "install them (Debian/Ubuntu: apt-get install postgresql) or set FSTORE_TEST_PG_DSN" \
        "to an existing server" >&2
      exit 1
    }
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
      echo "error: running as root needs a 'postgres' user to run the server (initdb refuses root)" >&2
      exit 1
    fi
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    port=$(python3 -c 'import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$address")
    password=fstore-test-$RANDOM$RANDOM
    echo "$password" > "$dir/pwfile"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir/pwfile"
    as_server_user "$bindir/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    [ "$address" = 127.0.0.1 ] || echo "host all all samenet scram-sha-256" >> "$dir/data/pg_hba.conf"
    opts="-p $port -k $dir -c listen_addresses=$address -c max_connections=300 -c fsync=off -c synchronous_commit=off"
    as_server_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -w -t 60 start >/dev/null ||
      { cat "$dir/server.log" >&2; exit 1; }
    cat > "$dir/restart.sh" <<RESTART
#!/usr/bin/env bash
set -e
if [ "\$(id -u)" = 0 ]; then
  runuser -u postgres -- "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -m fast -w -t 60 restart >/dev/null
else
  "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -m fast -w -t 60 restart >/dev/null
fi
RESTART
    chmod +x "$dir/restart.sh"
    echo "export FSTORE_TEST_PG_DSN='host=$address port=$port user=postgres password=$password dbname=postgres'"
    echo "export FSTORE_TEST_PG_RESTART='$dir/restart.sh'"
    ;;
  stop)
    bindir=$(find_bindir) || exit 0
    [ -d "$dir/data" ] && as_server_user "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: pg_server.sh start|stop DIR [ADDRESS]" >&2
    exit 2
    ;;
esac
