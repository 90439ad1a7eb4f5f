#!/usr/bin/env bash
# Installs the package the way a user does, into a new virtual environment,
# and uses it from outside the repository with no FSTORE_* variable set:
# opens a store, computes, reads back through pyarrow, then runs
# examples/python/training_workers.py with it.
#
#   bash bindings/python/install_test.sh
#
# Environment: CARGO_TARGET_DIR (default $HOME/.cache/fstore-target): where
# pip's build of the library goes, so that it reuses what `cargo build
# --release` built there rather than compiling the bundled DuckDB again.
# PYTHON (default python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fstore-target}"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/fstore-install-test.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
started=$SECONDS

"$python" -m venv "$scratch/venv"
pip=("$scratch/venv/bin/python" -m pip --disable-pip-version-check --quiet)
# Exactly the user's command. pip's build environment fetches setuptools and
# setuptools-rust; cargo finds the library fresh in CARGO_TARGET_DIR.
"${pip[@]}" install "$root/bindings/python"
installed=$SECONDS
"${pip[@]}" install "pyarrow>=15"

# No variable that could point at the build, and a working directory (and
# sys.path) outside the repository.
unset FSTORE_LIBRARY FSTORE_LIB_DIR PYTHONPATH FSTORE_CACHE_DIR
mkdir "$scratch/elsewhere"
cd "$scratch/elsewhere"
"$scratch/venv/bin/python" - "$scratch/venv" "$root" <<'PY'
import datetime, os, sys, tempfile
import pyarrow as pa
import fstore

venv, repo = (os.path.realpath(p) for p in sys.argv[1:])
package = os.path.realpath(os.path.dirname(fstore.__file__))
library = os.path.realpath(fstore.library_path())
assert package.startswith(venv + os.sep), f"fstore imported from {package}, not the new environment"
assert library.startswith(package + os.sep), f"libfstore loaded from {library}, not from inside the package"
assert fstore.library_version() == fstore.__version__

calls = []
def compute(key: fstore.Key) -> pa.Table:
    calls.append(key)
    return pa.table({"day": [key.start_date, key.end_date], "x": [1.5, 2.5]})

with tempfile.TemporaryDirectory() as cache, fstore.Store(cache) as store:
    key = fstore.Key("returns", "AAPL", datetime.date(2024, 1, 1), datetime.date(2024, 1, 2), config={"w": 20})
    first = pa.table(store.get_or_compute(key, compute))
    again = store.get_or_compute(key, compute).to_pyarrow()
    assert first.equals(again) and first.column("x").to_pylist() == [1.5, 2.5], first
    assert len(calls) == 1 and store.stats().hits == 1, (calls, store.stats())
print(f"installed fstore {fstore.__version__}: library inside the package ({os.path.basename(library)}); compute, hit and read back: ok")
PY
"$scratch/venv/bin/python" "$root/examples/python/training_workers.py" --workers 3 --epochs 2 --symbols 6
echo "install_test.sh: ok (pip install of the package: $((installed - started)) s; in all $((SECONDS - started)) s)"
