#!/usr/bin/env bash
# The built-in example: a throwaway local cluster, a parent database built from
# testdata/shop.sql, a branch made with CREATE DATABASE … TEMPLATE,
# testdata/migration.sql applied to the branch, the diff printed, and
# everything removed again. Then `pgbranchdiff check` does all of that in one command on the
# snapshot testdata/check/shop.sql, with a migration that fails on real rows: the failure is
# explained with the rows that cause it. Usage: testdata/demo.sh [pgbranchdiff options…]
# Works from any clone location (the SQL is fed to psql on standard input, so the
# server's user never needs to read the clone) and honours CARGO_TARGET_DIR.
# Exit status: 0 when the diff ran (it finds differences: that is the example),
# otherwise the failing step's status.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

bindir=${PGBRANCHDIFF_PG_BIN:-}
if [ -z "$bindir" ]; then
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then bindir=$(pg_config --bindir)
  else bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1); fi
fi
[ -x "$bindir/initdb" ] || { echo "demo: no PostgreSQL server binaries found (install postgresql or set PGBRANCHDIFF_PG_BIN)" >&2; exit 2; }

work=$(mktemp -d /tmp/pgbranchdiff-demo.XXXXXX)
chmod 755 "$work"
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres "$work"; as_pg=(runuser -u postgres --); fi
cleanup() { "${as_pg[@]}" "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

"${as_pg[@]}" "$bindir/initdb" -D "$work/data" -U postgres -A trust --no-sync >/dev/null
"${as_pg[@]}" "$bindir/pg_ctl" -D "$work/data" -l "$work/log" -w \
  -o "-k $work -c listen_addresses='' -c fsync=off -c full_page_writes=off" start >/dev/null
psql_bin=$bindir/psql
[ -x "$psql_bin" ] || psql_bin=$(command -v psql) || { echo "demo: psql not found" >&2; exit 2; }
psql=("$psql_bin" -X -q -v ON_ERROR_STOP=1 -h "$work" -U postgres)
"${psql[@]}" -d postgres -c "CREATE DATABASE shop"
"${psql[@]}" -d shop <"$here/shop.sql" >/dev/null
"${psql[@]}" -d postgres -c "CREATE DATABASE shop_branch TEMPLATE shop"
"${psql[@]}" -d shop_branch <"$here/migration.sql" >/dev/null

# The release profile, as `cargo install --path diff-cli --target-dir target` uses: one build serves both.
echo "demo: building pgbranchdiff in release mode (the first build takes a while: see the README)…" >&2
cargo build --release -p diff-cli --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/release/pgbranchdiff"
[ -x "$bin" ] || { echo "demo: the build did not produce $bin" >&2; exit 2; }
set +e
"$bin" "host=$work user=postgres dbname=shop" "host=$work user=postgres dbname=shop_branch" "$@"
status=$?
set -e
echo "(exit status $status: 0 identical, 1 differences, 2 trouble)"
# Differences are what the example shows; anything else is a failure of the demo.
[ "$status" -le 1 ] || exit "$status"

echo
echo "demo: pgbranchdiff check --snapshot testdata/check/shop.sql --migration testdata/check/migrations/0042_one_order_per_status.sql"
echo "      (restore into a throwaway cluster, branch, migrate, explain the failure, diff, clean up)"
set +e
(cd "$root" && PGBRANCHDIFF_PG_BIN=$bindir "$bin" check --quiet --snapshot testdata/check/shop.sql \
  --migration testdata/check/migrations/0042_one_order_per_status.sql)
status=$?
set -e
echo "(check exit status $status: 0 applied and the gate passed, 1 the migration failed, exceeded its budget or the gate failed, 2 trouble)"
# This migration fails on the snapshot's rows: 1 is the expected answer.
[ "$status" = 1 ] || exit 2
