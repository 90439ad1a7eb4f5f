#!/usr/bin/env bash
# Checks the shared library as the loader and the linker see it:
#   - its SONAME is libfstore.so.<major>, the major version of Cargo.toml
#     (and of fstore.h's FSTORE_VERSION_MAJOR);
#   - it exports only fstore_* symbols, and every function fstore.h declares;
#   - a program linked with -lfstore records the SONAME as NEEDED (not
#     libfstore.so, nor a path) and runs when only that name is there.
#
#   tests/packaging/shared_library.sh DIR   # DIR holds libfstore.so
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir=${1:?usage: shared_library.sh DIR (the directory holding libfstore.so)}
lib=$dir/libfstore.so
[ -f "$lib" ] || { echo "shared_library.sh: $lib does not exist; run 'cargo build --release' first" >&2; exit 1; }
for tool in readelf nm cc; do
  command -v "$tool" >/dev/null || { echo "shared_library.sh: $tool is missing (apt-get install binutils gcc)" >&2; exit 1; }
done

failures=0
fail() { echo "shared_library.sh: FAIL: $*" >&2; failures=$((failures + 1)); }

major=$(sed -n 's/^version = "\([0-9]*\)\..*/\1/p' "$root/Cargo.toml" | head -n 1)
[ -n "$major" ] || { echo "shared_library.sh: cannot read the version from Cargo.toml" >&2; exit 1; }
want_soname=libfstore.so.$major

header_major=$(sed -n 's/^#define FSTORE_VERSION_MAJOR \([0-9]*\)$/\1/p' "$root/include/fstore.h")
if [ "$header_major" = "$major" ]; then
  echo "ok: fstore.h's FSTORE_VERSION_MAJOR is Cargo.toml's major version, $major"
else
  fail "fstore.h's FSTORE_VERSION_MAJOR is '${header_major:-(none)}', Cargo.toml's major version $major"
fi

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]$/\1/p')
if [ "$soname" = "$want_soname" ]; then
  echo "ok: SONAME $soname"
else
  fail "SONAME is '${soname:-(none)}', expected $want_soname"
fi

exported=$(nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u)
foreign=$(echo "$exported" | grep -v '^fstore_' || true)
if [ -z "$foreign" ]; then
  echo "ok: all $(echo "$exported" | wc -l) exported symbols start with fstore_"
else
  fail "exported symbols outside the fstore_ namespace: $(echo "$foreign" | tr '\n' ' ')"
fi
declared=$(grep -oE '\bfstore_[a-z0-9_]+\(' "$root/include/fstore.h" | tr -d '(' | sort -u)
unexported=$(comm -23 <(echo "$declared") <(echo "$exported"))
if [ -z "$unexported" ]; then
  echo "ok: every function of fstore.h is exported"
else
  fail "declared in fstore.h but not exported: $(echo "$unexported" | tr '\n' ' ')"
fi

# Link in a scratch directory that holds only the development name, so that
# what the program records comes from the library itself.
work=$(mktemp -d "${TMPDIR:-/tmp}/fstore-soname.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/link" "$work/run"
ln -s "$(cd "$dir" && pwd)/libfstore.so" "$work/link/libfstore.so"
printf '#include "fstore.h"\n#include <stdio.h>\nint main(void) { printf("loaded libfstore %%s\\n", fstore_version()); return 0; }\n' \
  > "$work/version.c"
cc -std=c99 -I"$root/include" "$work/version.c" -L"$work/link" -lfstore -Wl,-rpath,"$work/run" -o "$work/version"
needed=$(readelf -d "$work/version" | sed -n 's/.*(NEEDED).*\[\(libfstore[^]]*\)\]$/\1/p')
if [ "$needed" = "$want_soname" ]; then
  echo "ok: a program linked with -lfstore needs $needed"
else
  fail "a program linked with -lfstore needs '${needed:-(nothing of libfstore)}', expected $want_soname"
fi
# At run time only the SONAME's name is there.
ln -s "$(cd "$dir" && pwd)/libfstore.so" "$work/run/$want_soname"
if out=$("$work/version" 2>&1); then
  echo "ok: it runs: $out"
else
  fail "the program did not run with only $want_soname present: $out"
fi

[ "$failures" -eq 0 ] || exit 1
echo "shared_library.sh: passed"
