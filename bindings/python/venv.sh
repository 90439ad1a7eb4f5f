#!/usr/bin/env bash
# Makes sure the virtual environment the Python tests and the benchmark use
# exists with pyarrow, pytest, python-dateutil and mypy, and prints its
# interpreter's path. Environment: PYTHON (default python3).
#
#   python=$(bash bindings/python/venv.sh)
set -euo pipefail

python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null 2>&1; then
    echo "venv.sh: $python not found: install Python 3.9 or newer (with its venv module), or set PYTHON" >&2
    exit 1
fi
venv="$HOME/.cache/fstore/venv"
if [ ! -x "$venv/bin/python" ]; then
    echo "venv.sh: creating a virtual environment in $venv" >&2
    mkdir -p "$(dirname "$venv")"
    if ! "$python" -m venv "$venv" >&2; then
        echo "venv.sh: '$python -m venv' failed: install the venv module (e.g. the python3-venv package)" >&2
        exit 1
    fi
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
# python-dateutil: without it pyarrow tries `import dateutil` again on every
# conversion of Python strings, taking that module's import lock each time; a
# fork while another thread holds it leaves the child blocked on its next
# conversion (CPython does not reset per-module import locks in a child). The
# fork tests test libfstore, not that.
# mypy: the type check of the package's hints (tests/test_types.py).
"${pip[@]}" install "pyarrow>=15" "pytest>=7" "python-dateutil>=2.8" "mypy>=1.10" >&2
echo "$venv/bin/python"
