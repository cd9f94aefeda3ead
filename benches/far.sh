#!/usr/bin/env bash
# Far-branch benchmark: the parent on one cluster, branches restored on a second cluster, each
# server behind a loopback proxy (benches/proxy.py) that counts bytes and can limit bandwidth and
# add delay. Compares `--strategy stream` and `--strategy hash` (and `auto`) on three branches:
# scattered changes (shopbench's change set), clustered changes (all in 1 % of orders' keys), and
# an identical copy. Prints time, bytes received per side (proxy count and the report's
# stats.received) and peak memory, per run.
#
#   benches/far.sh SCALE [MBIT] [DELAY_MS]
#
# Needs: `cargo build --release -p diff-cli -p benches`; cluster A from `benches/cluster.sh start
# /tmp/bench` with `shopbench generate --scale SCALE` run on it (conninfo in $S). Starts cluster B
# in /tmp/bench-far on port 54339 (kept for later runs; stop it with cluster.sh stop). Branches are
# restored once per scale (far<SCALE>_scattered, …); FAR_PREPARE_ONLY=1 stops after restoring them;
# FAR_BRANCHES="scattered" runs only those; "sparse dense" adds two more (1 in 700 and 1 in 70 of
# orders' rows changed, evenly).
set -euo pipefail
scale=$1; mbit=${2:-0}; delay=${3:-0}
here=$(cd "$(dirname "$0")" && pwd); root=$(dirname "$here")
bin=${PGBRANCHDIFF_BIN:-$root/target/release/pgbranchdiff}
bindir=${PGBRANCHDIFF_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}
S=${S:?set S to cluster A\'s conninfo (benches/cluster.sh start /tmp/bench)}
a_port=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$S")
B="host=/tmp/bench-far port=54339 user=postgres"
[ -S /tmp/bench-far/.s.PGSQL.54339 ] || "$here/cluster.sh" start /tmp/bench-far 54339 >/dev/null
parent=shop_s$scale

psql_b() { "$bindir/psql" -X -q "$B dbname=$1" -v ON_ERROR_STOP=1 "${@:2}"; }
copy_to_b() { # database on A → database on B (once)
  local from=$1 to=$2
  if [ "$(psql_b postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = '$to'")" = 0 ]; then
    psql_b postgres -c "CREATE DATABASE $to"
    "$bindir/pg_dump" -Fc "$S dbname=$from" | "$bindir/pg_restore" -d "$B dbname=$to" --no-owner
    psql_b "$to" -c "VACUUM ANALYZE"
    echo "restored $from as $to on B" >&2
  fi
}
copy_to_b "${parent}_branch" far${scale}_scattered
copy_to_b "$parent" far${scale}_identical
if [ "$(psql_b postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = 'far${scale}_clustered'")" = 0 ]; then
  copy_to_b "$parent" far${scale}_clustered
  # 0.15 % of orders' rows changed, all within the first 1 % of its keys.
  psql_b far${scale}_clustered -c "UPDATE orders SET status = 'clustered' WHERE id <= $scale * 10000 AND id % 7 = 0"
  psql_b far${scale}_clustered -c "VACUUM ANALYZE orders"
fi
# sparse and dense (run only when FAR_BRANCHES names them): orders' rows changed evenly over all its
# keys, 1 in 700 and 1 in 70 — ten times the changes, for how cost grows with them.
for kind in ${FAR_BRANCHES:-}; do
  case $kind in sparse) every=700;; dense) every=70;; *) continue;; esac
  if [ "$(psql_b postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = 'far${scale}_$kind'")" = 0 ]; then
    copy_to_b "$parent" far${scale}_$kind
    psql_b far${scale}_$kind -c "UPDATE orders SET status = '$kind' WHERE id % $every = 0"
    psql_b far${scale}_$kind -c "VACUUM ANALYZE orders"
  fi
done
[ -n "${FAR_PREPARE_ONLY:-}" ] && exit 0   # restore the branches only (untimed), run later

tmp=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
python3 "$here/proxy.py" 55431 127.0.0.1 "$a_port" --mbit "$mbit" --delay-ms "$delay" --counts "$tmp/a" &
python3 "$here/proxy.py" 55432 127.0.0.1 54339 --mbit "$mbit" --delay-ms "$delay" --counts "$tmp/b" &
sleep 1
pconn="host=127.0.0.1 port=55431 user=postgres sslmode=disable dbname=$parent"

echo "scale $scale, ${mbit:-0} Mbit/s (0: unlimited), ${delay} ms each way"
printf '%-10s %-7s %9s %12s %12s %12s %12s %8s  %s\n' branch strategy seconds "proxy A MiB" "proxy B MiB" "recv P MiB" "recv C MiB" "peak MB" "tables hashed/streamed"
for kind in ${FAR_BRANCHES:-scattered clustered identical}; do
  branch=far${scale}_$kind
  for strategy in stream hash auto; do
    read -r _ a0 _ _ <"$tmp/a"; read -r _ b0 _ _ <"$tmp/b"
    cconn="host=127.0.0.1 port=55432 user=postgres sslmode=disable dbname=$branch"
    start=$(date +%s.%N)
    /usr/bin/time -f '%M' -o "$tmp/rss" "$bin" --format json --quiet --strategy "$strategy" -o "$tmp/out.json" \
      "$pconn" "$cconn" || [ $? = 1 ]
    end=$(date +%s.%N)
    sleep 0.5
    read -r _ a1 _ _ <"$tmp/a"; read -r _ b1 _ _ <"$tmp/b"
    python3 - "$tmp/out.json" "$branch" "$strategy" "$start" "$end" "$a0" "$a1" "$b0" "$b1" "$(tail -n 1 "$tmp/rss")" <<'EOF'
import json, sys
path, branch, strategy, start, end, a0, a1, b0, b1, rss = sys.argv[1:]
d = json.load(open(path))
mib = lambda b: int(b) / 1048576
rec = d["stats"]["received"]
ways = [t["stats"]["strategy"] for t in d["tables"]]
print(f"{branch:<10} {strategy:<7} {float(end) - float(start):9.2f} {mib(int(a1) - int(a0)):12.1f} {mib(int(b1) - int(b0)):12.1f} "
      f"{mib(rec['parent']):12.1f} {mib(rec['child']):12.1f} {int(rss) / 1024:8.0f}  "
      f"{ways.count('hash')}/{ways.count('stream')}")
EOF
  done
done
