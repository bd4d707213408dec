#!/bin/sh
# The official MinIO image's entrypoint contract: arguments that do not start with
# `minio` are arguments of minio (`server /data` runs `minio server /data`).
set -e
if [ "$1" != minio ] && [ -n "$1" ]; then
  set -- minio "$@"
fi
exec "$@"
