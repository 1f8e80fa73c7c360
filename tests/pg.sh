#!/usr/bin/env bash
# pg.sh: throw-away PostgreSQL 15 clusters for the tests (issue 10).
#
#   tests/pg.sh start DIR    create (initdb, first time only) and start a
#                            cluster in DIR: trust auth, superuser "mq",
#                            database "mq", 127.0.0.1 on a free port (kept
#                            across restarts), unix socket in DIR, log in
#                            DIR/log. Prints the conninfo
#                            "host=127.0.0.1 port=P user=mq dbname=mq" and
#                            writes it to DIR/conninfo.
#   tests/pg.sh stop DIR     pg_ctl stop -m fast (bounded), then kill -9 by
#                            postmaster.pid if it is still there.
#   tests/pg.sh restart DIR  stop, then start again on the same port.
#   tests/pg.sh run CMD ...  start a cluster in a new temp dir, export
#                            MQ_TEST_PG (conninfo), MQ_TEST_PGDIR (the dir)
#                            and MQ_TEST_PGSH (this script), run CMD, stop
#                            the cluster (also when CMD fails or we are
#                            signalled; a watchdog in its own session does
#                            it if we are killed with SIGKILL), remove the
#                            dir, exit with CMD's status.
#
# As root, the cluster belongs to and runs as "nobody" (PostgreSQL refuses
# to run as root): DIR is chowned to it and every PostgreSQL binary runs
# through setpriv. Binaries: $MQ_PG_BINDIR, else /usr/lib/postgresql/15/bin.
# fsync and synchronous_commit stay on: the tests check durability.
set -euo pipefail

BIN=${MQ_PG_BINDIR:-/usr/lib/postgresql/15/bin}
START_TIMEOUT=${MQ_PG_START_TIMEOUT:-60} # seconds, for start and stop waits

die() {
  echo "pg.sh: $*" >&2
  exit 1
}

[ -x "$BIN/postgres" ] || die "no PostgreSQL binaries in $BIN (install postgresql-15: scripts/deps.sh --test)"

# as_owner CMD...: run CMD as the cluster's owner (nobody when we are root).
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    HOME=/ setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
  else
    "$@"
  fi
}

# free_port: a TCP port on 127.0.0.1 nobody listens on right now (the kernel
# picks it; a race with another process is caught by the start retry).
free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

postmaster_pid() {
  local f=$1/data/postmaster.pid
  [ -r "$f" ] && head -n1 "$f"
}

# alive PID: the process exists and is not a zombie (PID 1 in a container
# may take its time reaping the postmaster pg_ctl left to it).
alive() {
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $st != Z* ]]
}

running() {
  local pid
  pid=$(postmaster_pid "$1") || return 1
  [ -n "$pid" ] && alive "$pid"
}

cmd_start() {
  local dir=$1 port tries ok
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ ${#dir} -le 80 ] || die "$dir: path too long for a unix socket (keep it under 80 characters)"
  if [ "$(id -u)" = 0 ]; then
    chown nobody:nogroup "$dir"
    chmod 700 "$dir"
  fi
  if running "$dir"; then
    die "$dir: a cluster is already running there (pid $(postmaster_pid "$dir"))"
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    rm -rf "$dir/data"
    as_owner "$BIN/initdb" -D "$dir/data" -U mq --auth=trust -E UTF8 --locale=C.UTF-8 \
      --no-sync >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      die "initdb failed in $dir"
    }
    # Port-independent settings; the port goes in port.conf.
    cat >>"$dir/data/postgresql.conf" <<EOF
# tests/pg.sh
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = on
synchronous_commit = on
shared_buffers = 16MB
max_connections = 100
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] '
include_if_exists = 'port.conf'
EOF
  fi
  tries=0
  ok=false
  while [ $tries -lt 5 ]; do
    tries=$((tries + 1))
    if [ -f "$dir/port" ]; then
      port=$(cat "$dir/port") # a restart keeps its port
    else
      port=$(free_port)
    fi
    as_owner sh -c "echo 'port = $port' >'$dir/data/port.conf'"
    if as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t "$START_TIMEOUT" start >/dev/null; then
      ok=true
      break
    fi
    # Lost the port to someone else? A fresh cluster may try another one.
    echo "pg.sh: start on port $port failed (attempt $tries), log:" >&2
    tail -n 5 "$dir/log" >&2 || true
    running "$dir" && cmd_stop "$dir"
    [ -f "$dir/port" ] && [ $tries -ge 3 ] && break
  done
  $ok || die "could not start PostgreSQL in $dir (see $dir/log)"
  # Bounded readiness check over TCP (pg_ctl -w used the socket).
  local i=0
  until "$BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U mq -d postgres; do
    i=$((i + 1))
    [ $i -lt $((START_TIMEOUT * 10)) ] || die "PostgreSQL in $dir not ready on 127.0.0.1:$port"
    sleep 0.1
  done
  if [ ! -f "$dir/port" ]; then
    "$BIN/createdb" -h 127.0.0.1 -p "$port" -U mq mq || die "createdb mq failed"
    echo "$port" >"$dir/port"
  fi
  echo "host=127.0.0.1 port=$port user=mq dbname=mq" >"$dir/conninfo"
  cat "$dir/conninfo"
}

cmd_stop() {
  local dir=$1 pid i
  [ -d "$dir/data" ] || die "$dir: no cluster there"
  running "$dir" || return 0
  pid=$(postmaster_pid "$dir")
  if as_owner "$BIN/pg_ctl" -D "$dir/data" -m fast -w -t "$START_TIMEOUT" stop >/dev/null 2>&1; then
    return 0
  fi
  if alive "$pid"; then
    echo "pg.sh: fast stop of pid $pid timed out: kill -9" >&2
    pkill -9 -P "$pid" 2>/dev/null || true # its backends, by parent pid
    kill -9 "$pid" 2>/dev/null || true
    i=0
    while alive "$pid" && [ $i -lt 100 ]; do
      sleep 0.1
      i=$((i + 1))
    done
    alive "$pid" && die "pid $pid survives kill -9"
  fi
  return 0
}

RUN_DIR=
RUN_CHILD=
RUN_SIGNALLED=false
run_cleanup() {
  local pid i
  trap '' TERM INT
  if [ -n "$RUN_CHILD" ]; then
    kill "$RUN_CHILD" 2>/dev/null || true
    wait "$RUN_CHILD" 2>/dev/null || true
  fi
  [ -n "$RUN_DIR" ] || return 0
  if $RUN_SIGNALLED; then
    # Signalled (meson's timeout: SIGTERM to our process group, SIGKILL
    # 0.5 s later; pg_ctl put the postmaster in a session of its own, so
    # only we can stop it): immediate shutdown, no checkpoint, then rm.
    if pid=$(postmaster_pid "$RUN_DIR") && [ -n "$pid" ]; then
      kill -QUIT "$pid" 2>/dev/null || true
      i=0
      while alive "$pid" && [ $i -lt 100 ]; do
        sleep 0.05
        i=$((i + 1))
      done
      alive "$pid" && kill -9 "$pid" 2>/dev/null
    fi
  else
    cmd_stop "$RUN_DIR" || true
  fi
  rm -rf "$RUN_DIR"
}

# cmd_reap PID DIR: the watchdog of a run, in a session of its own: once
# PID is gone (bounded: a day), stops the cluster in DIR and removes DIR if
# the run could not (killed with SIGKILL: meson kills a test's process group
# 0.5 s after its SIGTERM, and the postmaster is in no group of ours).
cmd_reap() {
  local pid=$1 dir=$2 pm i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 86400 ]; do
    sleep 1
    i=$((i + 1))
  done
  [ -d "$dir" ] || return 0
  if pm=$(postmaster_pid "$dir") && [ -n "$pm" ] && alive "$pm"; then
    kill -QUIT "$pm" 2>/dev/null || true
    i=0
    while alive "$pm" && [ $i -lt 100 ]; do
      sleep 0.1
      i=$((i + 1))
    done
    alive "$pm" && kill -9 "$pm" 2>/dev/null
  fi
  rm -rf "$dir"
}

cmd_run() {
  local dir rc
  dir=$(mktemp -d /tmp/mqpg.XXXXXX)
  RUN_DIR=$dir
  setsid "${BASH_SOURCE[0]}" _reap $$ "$dir" </dev/null >/dev/null 2>&1 &
  trap run_cleanup EXIT
  trap 'RUN_SIGNALLED=true; exit 143' TERM
  trap 'RUN_SIGNALLED=true; exit 130' INT
  MQ_TEST_PG=$(cmd_start "$dir") || {
    cat "$dir/log" >&2 2>/dev/null || true
    exit 1
  }
  export MQ_TEST_PG MQ_TEST_PGDIR=$dir
  MQ_TEST_PGSH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
  export MQ_TEST_PGSH
  # In the background, so that a TERM (meson's timeout) is handled now.
  set +e
  "$@" &
  RUN_CHILD=$!
  wait "$RUN_CHILD"
  rc=$?
  RUN_CHILD=
  set -e
  exit $rc
}

case ${1:-} in
  start) [ $# -eq 2 ] || die "usage: pg.sh start DIR"; cmd_start "$2" ;;
  stop) [ $# -eq 2 ] || die "usage: pg.sh stop DIR"; cmd_stop "$2" ;;
  restart) [ $# -eq 2 ] || die "usage: pg.sh restart DIR"; cmd_stop "$2"; cmd_start "$2" ;;
  run) [ $# -ge 2 ] || die "usage: pg.sh run CMD [ARGS...]"; shift; cmd_run "$@" ;;
  _reap) [ $# -eq 3 ] || die "usage: pg.sh _reap PID DIR"; cmd_reap "$2" "$3" ;;
  *) die "usage: pg.sh start DIR | stop DIR | restart DIR | run CMD [ARGS...]" ;;
esac
