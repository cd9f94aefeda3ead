#!/usr/bin/env bash
# Time and peak memory of two pgbranchdiff binaries on the same diff, rounds interleaved, so a
# change's cost is measured in one run on one machine state (e.g. before and after a commit).
# Usage: benches/before_after.sh BEFORE_BIN AFTER_BIN "CONNINFO" PARENT_DB CHILD_DB ROUNDS [pgbranchdiff options…]
# Prints one line per run: label, seconds, peak RSS in MB, exit status (1 = differences found).
set -euo pipefail
before=$1; after=$2; conninfo=$3; parent=$4; child=$5; rounds=$6; shift 6
for round in $(seq 1 "$rounds"); do
  for label in before after; do
    bin=$before; [ "$label" = after ] && bin=$after
    out=$(mktemp)
    set +e
    /usr/bin/time -f "%e %M" -o "$out.time" "$bin" --format json --quiet "$@" \
      "$conninfo dbname=$parent" "$conninfo dbname=$child" >"$out"
    status=$?
    set -e
    read -r secs kb < <(tail -n 1 "$out.time")
    printf '%s round %s: %6.2f s  %6.1f MB  exit %s\n' "$label" "$round" "$secs" "$(echo "$kb / 1024" | bc -l)" "$status"
    rm -f "$out" "$out.time"
  done
done
