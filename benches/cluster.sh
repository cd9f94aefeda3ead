#!/usr/bin/env bash
# Starts (start DIR) or stops (stop DIR) a throwaway benchmark cluster in DIR, listening on
# the unix socket in DIR and 127.0.0.1:PORT (default 54329). As root it runs as `postgres`.
set -euo pipefail
cmd=$1; dir=$2; port=${3:-54329}
bindir=${PGBRANCHDIFF_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}
as_pg=(); [ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)
case $cmd in
  start)
    mkdir -p "$dir"; chmod 755 "$dir"; [ "$(id -u)" = 0 ] && chown postgres "$dir"
    [ -d "$dir/data" ] || "${as_pg[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync >/dev/null
    "${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 \
      -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c shared_buffers=2GB -c max_wal_size=8GB \
      -c maintenance_work_mem=512MB -c checkpoint_timeout=30min" start >/dev/null
    echo "host=$dir port=$port user=postgres";;
  stop) "${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null;;
esac
