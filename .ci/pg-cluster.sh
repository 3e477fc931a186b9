# Source this: `pg_cluster_start DIR` starts a throwaway PostgreSQL cluster in DIR (Debian's
# package; as root it runs as the `postgres` user, since initdb refuses root), creates database
# `study`, and sets PG_URL; `pg_cluster_stop DIR` stops it. Used by .ci/interop and benches/.
pg_cluster_start() {
  local dir=$1 port
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  PG_AS=(); if [ "$(id -u)" = 0 ]; then PG_AS=(runuser -u postgres --); chown postgres: "$dir"; fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "${PG_AS[@]}" "$PG_BIN/initdb" -U consist -A trust --no-sync -D "$dir/pg" >/dev/null
  "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" -w start >/dev/null
  "${PG_AS[@]}" "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U consist study
  PG_URL="postgres://consist@127.0.0.1:$port/study"
}

pg_cluster_stop() {
  "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$1/pg" -m immediate -w stop >/dev/null 2>&1 || true
}
