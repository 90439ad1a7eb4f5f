#!/usr/bin/env bash
# Gives the libfstore.so that cargo built in DIR the file name its SONAME
# asks for (libfstore.so.0), as a symbolic link beside it, so that programs
# linked against DIR with -lfstore and an rpath find it at run time. Cargo
# writes only libfstore.so; an installed copy already has the link (and its
# libfstore.so is itself a link, which is then left alone).
#
#   tests/lib_links.sh DIR
set -euo pipefail

dir=${1:?usage: lib_links.sh DIR (the directory holding libfstore.so)}
lib=$dir/libfstore.so
[ -f "$lib" ] || { echo "lib_links.sh: $lib does not exist; run 'cargo build --release' first" >&2; exit 1; }
[ ! -L "$lib" ] || exit 0
command -v readelf >/dev/null || { echo "lib_links.sh: readelf is missing (apt-get install binutils)" >&2; exit 1; }

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]$/\1/p')
if [ -z "$soname" ]; then
  echo "lib_links.sh: $lib has no SONAME; rebuild it ('cargo build --release' links it with one)" >&2
  exit 1
fi
link=$dir/$soname
if [ -e "$link" ] && [ ! -L "$link" ]; then
  exit 0 # a real file of that name: an installed layout
fi
ln -sfn libfstore.so "$link"
