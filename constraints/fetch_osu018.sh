#!/bin/sh
# Unpack the OSU 0.18 um standard-cell liberty from Debian's qflow-tech-osu018 package into
# DEST without installing qflow itself. Needs apt-get (the package lists are refreshed by
# `make setup`). Usage: fetch_osu018.sh DEST
set -eu
dest=${1:?usage: fetch_osu018.sh DEST}
if [ -f "$dest/osu018_stdcells.lib" ]; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -qq qflow-tech-osu018 >/dev/null)
dpkg -x "$tmp"/qflow-tech-osu018_*.deb "$tmp/x"
lib=$(find "$tmp/x" -name 'osu018_stdcells.lib' | head -n 1)
[ -n "$lib" ] || { echo "fetch_osu018: osu018_stdcells.lib not found in the package" >&2; exit 1; }
mkdir -p "$dest"
cp "$lib" "$dest/osu018_stdcells.lib"
echo "setup: osu018 liberty unpacked to $dest"
