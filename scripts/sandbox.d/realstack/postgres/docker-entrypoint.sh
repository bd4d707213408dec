#!/usr/bin/env bash
# Entrypoint of the sandbox's PostgreSQL image, written here for Debian's PostgreSQL. It
# honours the documented contract of the official image's entrypoint:
#   POSTGRES_PASSWORD (required unless POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_USER
#   (default postgres), POSTGRES_DB (default: the user), POSTGRES_INITDB_ARGS,
#   POSTGRES_INITDB_WALDIR, POSTGRES_HOST_AUTH_METHOD, each also as NAME_FILE;
#   PGDATA; on first initialisation only (no PG_VERSION in PGDATA) initdb, a
#   `host all all all <method>` line in pg_hba.conf, the database, then the files of
#   /docker-entrypoint-initdb.d in name order (*.sh run if executable else sourced;
#   *.sql, *.sql.gz, *.sql.xz, *.sql.zst through psql with ON_ERROR_STOP) against a
#   server listening on its socket only; started as root it drops to postgres, started
#   as another uid without a passwd entry it gives initdb one (nss_wrapper);
#   arguments starting with '-' are options of postgres; anything else is run as is.
set -Eeo pipefail

die() { printf 'docker-entrypoint.sh: error: %s\n' "$*" >&2; exit 1; }

# NAME from NAME or from the file NAME_FILE names (never both), else DEFAULT
read_setting() {
  local name=$1 default=${2:-} file_var="${1}_FILE"
  if [ -n "${!name:-}" ] && [ -n "${!file_var:-}" ]; then
    die "both $name and $file_var are set; set one of them"
  fi
  if [ -n "${!file_var:-}" ]; then
    export "$name=$(< "${!file_var}")"
  else
    export "$name=${!name:-$default}"
  fi
  unset "$file_var"
}

load_settings() {
  read_setting POSTGRES_PASSWORD
  read_setting POSTGRES_USER postgres
  read_setting POSTGRES_DB "$POSTGRES_USER"
  read_setting POSTGRES_INITDB_ARGS
  POSTGRES_HOST_AUTH_METHOD=${POSTGRES_HOST_AUTH_METHOD:-}
}

prepare_directories() {
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA" 2>/dev/null || true  # PostgreSQL itself refuses a group-readable one
  mkdir -p /var/run/postgresql 2>/dev/null || true
  chmod 3775 /var/run/postgresql 2>/dev/null || true
  if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
    mkdir -p "$POSTGRES_INITDB_WALDIR"
    chmod 0700 "$POSTGRES_INITDB_WALDIR"
  fi
  if [ "$(id -u)" = 0 ]; then
    local dir
    for dir in "$PGDATA" /var/run/postgresql ${POSTGRES_INITDB_WALDIR:+"$POSTGRES_INITDB_WALDIR"}; do
      find "$dir" \! -user postgres -exec chown postgres '{}' +
    done
  fi
}

require_password() {
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    die "the database is not initialised and POSTGRES_PASSWORD is empty: set POSTGRES_PASSWORD" \
        "(or POSTGRES_HOST_AUTH_METHOD=trust, which lets anyone connect without a password)"
  fi
  if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
    echo 'WARNING: POSTGRES_HOST_AUTH_METHOD=trust: every host may connect without a password' >&2
  fi
}

# initdb wants the current uid in /etc/passwd: lend it one through nss_wrapper if needed
with_passwd_entry() {
  if getent passwd "$(id -u)" > /dev/null; then
    "$@"
    return
  fi
  local lib passwd group
  lib=$(ls /usr/lib/*/libnss_wrapper.so 2>/dev/null | head -n1)
  [ -n "$lib" ] || die "uid $(id -u) has no passwd entry and libnss_wrapper.so is missing"
  passwd=$(mktemp) group=$(mktemp)
  printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$(id -u)" "$(id -g)" "$PGDATA" > "$passwd"
  printf 'postgres:x:%s:\n' "$(id -g)" > "$group"
  LD_PRELOAD=$lib NSS_WRAPPER_PASSWD=$passwd NSS_WRAPPER_GROUP=$group "$@"
  rm -f "$passwd" "$group"
}

initialise_cluster() {
  local waldir=()
  [ -n "${POSTGRES_INITDB_WALDIR:-}" ] && waldir=(--waldir "$POSTGRES_INITDB_WALDIR")
  # the password goes through a pipe, never a command line; initdb rejects an empty file
  # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of options, split as a shell would
  with_passwd_entry eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"' "${waldir[@]}"'
  local method=$POSTGRES_HOST_AUTH_METHOD
  # like the official image: the server's password_encryption (scram-sha-256) unless set
  [ -n "$method" ] || method=$(postgres -C password_encryption "$@")
  printf '\nhost all all all %s\n' "$method" >> "$PGDATA/pg_hba.conf"
}

sql() {
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc \
       --dbname "${SQL_DB:-$POSTGRES_DB}" "$@"
}

create_database() {
  local exists
  exists=$(SQL_DB=postgres sql --tuples-only --set db="$POSTGRES_DB" <<< "SELECT 1 FROM pg_database WHERE datname = :'db'")
  if [ -z "${exists// }" ]; then
    SQL_DB=postgres sql --set db="$POSTGRES_DB" <<< 'CREATE DATABASE :"db"'
  fi
}

run_init_files() {
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
      *.sh)
        if [ -x "$f" ]; then echo "$0: running $f"; "$f"; else echo "$0: sourcing $f"; . "$f"; fi ;;
      *.sql) echo "$0: running $f"; sql -f "$f" ;;
      *.sql.gz) echo "$0: running $f"; gunzip -c "$f" | sql ;;
      *.sql.xz) echo "$0: running $f"; xzcat "$f" | sql ;;
      *.sql.zst) echo "$0: running $f"; zstd -dc "$f" | sql ;;
      *) echo "$0: ignoring $f" ;;
    esac
  done
}

first_initialisation() {
  require_password
  ls /docker-entrypoint-initdb.d/ > /dev/null  # unreadable: fail before anything is written
  initialise_cluster "$@"
  export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
  # a server on the socket only: nobody connects before the init files ran
  PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -w start \
    -o "$(printf '%q ' "$@" -c listen_addresses='' -p "${PGPORT:-5432}")"
  create_database
  run_init_files
  PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -m fast -w stop
  unset PGPASSWORD
  echo "PostgreSQL init process complete; ready for start up."
}

wants_help() {
  local arg
  for arg; do
    case "$arg" in -'?'|--help|--describe-config|-V|--version) return 0 ;; esac
  done
  return 1
}

main() {
  [ "${1:0:1}" = - ] && set -- postgres "$@"
  if [ "$1" = postgres ] && ! wants_help "$@"; then
    load_settings
    prepare_directories
    if [ "$(id -u)" = 0 ]; then
      exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
    fi
    if [ -s "$PGDATA/PG_VERSION" ]; then
      echo "PostgreSQL database directory appears to contain a database; skipping initialisation"
    else
      first_initialisation "${@:2}"
    fi
  fi
  exec "$@"
}

main "$@"
