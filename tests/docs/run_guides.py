#!/usr/bin/env python3
"""Runs every command of the operating guides, so that they cannot go stale.

The convention, for docs/*.md:

- A fenced block opened with ```sh is run; blocks run in order, each in a
  fresh `bash -euo pipefail` from the repository's root. What a block
  exports (and the directory it ends in) carries over to the next block and
  the next guide; the guides run in the order of GUIDES below.
- A block opened with ```sh env holds settings, one `export NAME=value` a
  line. For the names in `overrides()` (the server, passwords, names that
  must be unique on a shared server, directories) the runner writes its own
  value instead of the guide's example, and says so.
- Any other block (```text, ```sql, one indented by four spaces) is shown,
  not run: keep those few. A fence inside a list item may be indented.

`--verbose` prints every block's output. A block that fails (or runs longer
than BLOCK_SECONDS) stops the run, which prints the guide, the block and its
output and exits 1. The runner needs a
PostgreSQL superuser connection in FSTORE_TEST_PG_DSN (tests/run_all.sh
starts a throwaway server and exports it), `psql`, and the `fstore` tool in
$CARGO_TARGET_DIR/release. It runs with a temporary HOME and removes the
database, roles and directories it created.
"""

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUIDES = ["docs/deployment.md", "docs/rollback.md", "docs/troubleshooting.md"]
BLOCK_SECONDS = 180
FENCE = re.compile(r"^(\s*)```(\S*)\s*(\S*)\s*$")
EXPORT = re.compile(r"^export ([A-Z_][A-Z0-9_]*)=(.*)$")


def blocks(path):
    """(first line number, (language, tag), text) of each fenced block; a
    fence may be indented (inside a list item), and so is its text."""
    found, current = [], None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fence = FENCE.match(line)
        if current is None and fence:
            indent, language, tag = fence.groups()
            current = (number + 1, (language, tag), indent, [])
        elif current is not None and fence and fence.group(1) == current[2] and not fence.group(2):
            found.append((current[0], current[1], "\n".join(current[3]) + "\n"))
            current = None
        elif current is not None:
            current[3].append(line[len(current[2]):] if line.startswith(current[2]) else line.lstrip())
    if current is not None:
        sys.exit(f"{path}: the block at line {current[0] - 1} is never closed")
    return found


def parse_dsn(dsn):
    """The key=value pairs of a libpq connection string (values may be quoted)."""
    pairs = {}
    for m in re.finditer(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn):
        value = m.group(2)
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        pairs[m.group(1)] = value
    return pairs


def overrides(server, work, run_id):
    return {
        "PGHOST": server.get("host", "localhost"),
        "PGPORT": server.get("port", "5432"),
        "PGUSER": server.get("user", "postgres"),
        "PGPASSWORD": server.get("password", ""),
        "FSTORE_DATABASE": f"fstore_docs_{run_id}",
        "FSTORE_OWNER": f"fstore_docs_owner_{run_id}",
        "FSTORE_OWNER_PASSWORD": secrets.token_hex(12),
        "FSTORE_WORKER": f"fstore_docs_worker_{run_id}",
        "FSTORE_WORKER_PASSWORD": secrets.token_hex(12),
        "FSTORE_CACHE_DIR": str(work / "cache"),
        "FSTORE_ENV_DIR": str(work / "etc"),
        "SINGLE_HOST_CACHE_DIR": str(work / "single-host-cache"),
        "SINGLE_HOST_DATABASE": f"fstore_docs_{run_id}_host1",
    }


def with_overrides(text, values, where):
    lines = []
    for line in text.splitlines():
        m = EXPORT.match(line)
        if m and m.group(1) not in values and m.group(2).startswith("/"):
            sys.exit(f"{where}: {m.group(1)} is a path the runner does not replace: add it to overrides()")
        if m and m.group(1) in values:
            name = m.group(1)
            shown = "***" if "PASSWORD" in name else values[name]
            print(f"  {where}: {name}={shown} (the guide's example: {m.group(2)})")
            line = f"export {name}={shlex_quote(values[name])}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def shlex_quote(value):
    import shlex

    return shlex.quote(value)


def run_block(script, state, env, log, sessions):
    """Runs `script` after the saved state (every variable a block sets is
    exported, so that the next block sees it); saves the state it leaves.
    Background jobs it starts live on until the guide ends. Returns (ok,
    output, seconds)."""
    wrapped = (
        f"set -a\n. {shlex_quote(str(state))}\n"
        f"{script}\n"
        f"export -p > {shlex_quote(str(state))}.next && pwd > {shlex_quote(str(state))}.cwd\n"
    )
    cwd_file = Path(str(state) + ".cwd")
    cwd = cwd_file.read_text().strip() if cwd_file.exists() else str(ROOT)
    started = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", wrapped],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        sessions.append(process.pid)
        try:
            ok = process.wait(timeout=BLOCK_SECONDS) == 0
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            ok, timed_out = False, True
    output = Path(log).read_text(errors="replace")
    if timed_out:
        output += f"\n*** still running after {BLOCK_SECONDS} s: killed ***\n"
    if ok:
        Path(str(state) + ".next").replace(state)
    return ok, output, time.monotonic() - started


def stop_sessions(sessions):
    """Ends what the guide's blocks left running in the background."""
    for pgid in sessions:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    sessions.clear()


def cleanup(values, env):
    sql = (
        f'DROP DATABASE IF EXISTS "{values["FSTORE_DATABASE"]}" WITH (FORCE);\n'
        f'DROP DATABASE IF EXISTS "{values["SINGLE_HOST_DATABASE"]}" WITH (FORCE);\n'
        f'DROP ROLE IF EXISTS "{values["FSTORE_WORKER"]}";\n'
        f'DROP ROLE IF EXISTS "{values["FSTORE_OWNER"]}";\n'
    )
    admin = dict(env, **{k: values[k] for k in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD")})
    done = subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=0"], input=sql.encode(), env=admin, capture_output=True)
    if done.returncode != 0:
        print("cleanup: " + done.stderr.decode(errors="replace"), file=sys.stderr)


def main():
    verbose = "--verbose" in sys.argv[1:]
    dsn = os.environ.get("FSTORE_TEST_PG_DSN")
    if not dsn:
        sys.exit("error: the guides need a PostgreSQL server: set FSTORE_TEST_PG_DSN (tests/run_all.sh starts one)")
    missing = [tool for tool in ("psql", "createdb", "bash", "cargo") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"error: the guides' commands need {', '.join(missing)}: install PostgreSQL's client "
                 "(psql, createdb; Debian: apt-get install postgresql-client), bash and cargo")
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/fstore-target"))
    if not (target / "release" / "fstore").exists():
        sys.exit(f"error: {target}/release/fstore is not built: run tests/run_all.sh build (or cargo build --release)")
    server = parse_dsn(dsn)
    if "host" not in server or "password" not in server:
        sys.exit("error: FSTORE_TEST_PG_DSN must be a key=value connection string with host and password")

    work = Path(tempfile.mkdtemp(prefix="fstore-guides."))
    for sub in ("home", "etc"):
        (work / sub).mkdir()
    values = overrides(server, work, f"{os.getpid()}_{secrets.token_hex(3)}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "FSTORE_"))}
    # cargo and rustup stay where they are; everything else sees a fresh HOME.
    env.setdefault("CARGO_HOME", str(Path.home() / ".cargo"))
    env.setdefault("RUSTUP_HOME", str(Path.home() / ".rustup"))
    env["CARGO_TARGET_DIR"] = str(target)
    env["HOME"] = str(work / "home")
    env["PATH"] = f"{target / 'release'}:{env.get('PATH', '/usr/bin:/bin')}"
    state = work / "state.sh"
    state.write_text("")

    failed = False
    try:
        for guide in GUIDES:
            path = ROOT / guide
            ran = 0
            sessions = []
            for line, (language, tag), text in blocks(path):
                if language != "sh":
                    continue
                where = f"{guide}:{line}"
                if tag == "env":
                    text = with_overrides(text, values, where)
                ok, output, seconds = run_block(text, state, env, work / "block.log", sessions)
                ran += 1
                if not ok:
                    print(f"\n*** {where}: this block failed ({seconds:.1f} s):\n")
                    print("".join(f"    {l}\n" for l in text.splitlines()))
                    print("*** its output:\n")
                    print(output)
                    failed = True
                    stop_sessions(sessions)
                    return 1
                print(f"{where}: ok ({seconds:.1f} s)")
                if verbose:
                    print("".join(f"    {l}\n" for l in output.splitlines()))
            stop_sessions(sessions)
            if ran == 0:
                print(f"{guide}: no sh block to run")
                return 1
        print(f"every command of {', '.join(GUIDES)} ran")
        return 0
    finally:
        cleanup(values, env)
        if failed:
            print(f"(kept {work} for a look)")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
