#!/bin/sh
# The official Redis image's entrypoint contract, written here for Debian's redis-server:
# - a first argument that is an option or a .conf file means `redis-server ARGS`;
# - started as root, redis-server drops to the redis user (owning /data first);
# - the official image builds Redis with protected mode off (a container is reached from
#   other addresses): Debian's build has it on, so it is turned off here unless asked;
# - a umask of 0077 for the data files when the runtime left the default 0022.
set -e
case "$1" in
  -*|*.conf) set -- redis-server "$@" ;;
esac
if [ "$1" = redis-server ]; then
  if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
  fi
  case " $* " in
    *" --protected-mode "*) ;;
    *) set -- "$@" --protected-mode no ;;
  esac
  [ "$(umask)" = 0022 ] && umask 0077
fi
exec "$@"
