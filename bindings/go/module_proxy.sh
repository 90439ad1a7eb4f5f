#!/usr/bin/env bash
# Writes a Go module proxy directory (GOPROXY=file://OUT) that serves the
# module in DIR as MODULE@VERSION, in the layout proxy.golang.org serves
# (https://go.dev/ref/mod#goproxy-protocol): @v/list, VERSION.info,
# VERSION.mod and VERSION.zip, whose files sit under MODULE@VERSION/. As
# in a real module zip, a subdirectory with a go.mod of its own is another
# module and is left out.
#
#   bindings/go/module_proxy.sh DIR MODULE VERSION OUT
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 DIR MODULE VERSION OUT" >&2; exit 2; }
dir=$1 module=$2 version=$3 out=$4
at="$out/$module/@v"
mkdir -p "$at"
echo "$version" > "$at/list"
printf '{"Version":"%s","Time":"%s"}\n' "$version" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$at/$version.info"
cp "$dir/go.mod" "$at/$version.mod"
python3 - "$dir" "$module@$version" "$at/$version.zip" <<'PY'
import os, sys, zipfile
src, prefix, dest = sys.argv[1:]
with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
    for base, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d not in (".git", "vendor")
                         and not os.path.exists(os.path.join(base, d, "go.mod")))
        for name in sorted(files):
            path = os.path.join(base, name)
            z.write(path, prefix + "/" + os.path.relpath(path, src))
PY
