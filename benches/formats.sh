#!/usr/bin/env bash
# Usage: [FORMATS="json ndjson arrow sql"] benches/formats.sh "CONNINFO" PARENT_DB CHILD_DB ROUNDS
# Wall time and peak RSS (/usr/bin/time -v) of each output format written with
# --output on the same diff, interleaved round by round (Arrow writes a directory).
set -u
S=$1; shift
BIN=${BIN:-target/release/pgbranchdiff}
for r in $(seq 1 "$3"); do
  for fmt in ${FORMATS:-json ndjson arrow sql}; do
    out=${TMPDIR:-/tmp}/pgbd-formats.$fmt; rm -rf "$out"
    /usr/bin/time -v "$BIN" --quiet --format $fmt --output "$out" "$S dbname=$1" "$S dbname=$2" 2> "$out.time"
    code=$?
    wall=$(grep "Elapsed (wall" "$out.time" | awk '{print $NF}')
    rss=$(grep "Maximum resident" "$out.time" | awk '{print $NF}')
    size=$(du -sk "$out" | cut -f1)
    echo "round $r $fmt exit=$code wall=$wall maxrss_kb=$rss output_kb=$size"
  done
done
