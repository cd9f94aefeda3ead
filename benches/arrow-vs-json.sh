#!/usr/bin/env bash
# Usage: benches/arrow-vs-json.sh "CONNINFO" PARENT_DB CHILD_DB ROUNDS
# Wall time and peak RSS (/usr/bin/time -v) of `--format json --output FILE` and
# `--format arrow --output DIR` on the same diff, interleaved round by round.
set -u
S=$1; shift
BIN=${BIN:-target/release/pgbranchdiff}
for r in $(seq 1 "$3"); do
  for fmt in json arrow; do
    out=${TMPDIR:-/tmp}/arrow-vs-json.$fmt; rm -rf "$out"
    /usr/bin/time -v "$BIN" --quiet --format $fmt --output "$out" "$S dbname=$1" "$S dbname=$2" 2> "$out.time"
    code=$?
    wall=$(grep "Elapsed (wall" "$out.time" | awk '{print $NF}')
    rss=$(grep "Maximum resident" "$out.time" | awk '{print $NF}')
    size=$(du -sk "$out" | cut -f1)
    echo "round $r $fmt exit=$code wall=$wall maxrss_kb=$rss output_kb=$size"
  done
done
