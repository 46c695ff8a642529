#!/bin/sh
# How the container image builds and installs llmswitch, in one place: the Dockerfile runs these two
# steps, and scripts/container-check runs the very same ones on this machine (no container engine
# needed), so the image's install cannot drift from what the tests exercise.
#
#   PYTHON=/venv/bin/python sh docker/install.sh wheel DIST_DIR [LOCK]    build the wheel (run in the source tree)
#   PYTHON=/venv/bin/python sh docker/install.sh install DIST_DIR [LOCK]  install it with the postgres and redis extras
#
# LOCK (default requirements/lock.txt) pins every dependency, the build backend included, so an image
# built today and one built next month hold the same versions. PYTHON is the interpreter of the
# environment to act on (default python3). pip's cache is left to the caller: the Dockerfile turns it
# off (PIP_NO_CACHE_DIR, nothing cached in a layer), the check on this machine reuses it.
set -eu

PY=${PYTHON:-python3}
PIP="$PY -m pip --disable-pip-version-check --no-input"
what=${1:?usage: install.sh wheel|install DIST_DIR [LOCK]}
dist=${2:?usage: install.sh wheel|install DIST_DIR [LOCK]}
lock=${3:-requirements/lock.txt}

case "$what" in
  wheel)
    # the build backend from the lock, then a build without an isolated (unpinned) build environment
    $PIP install -q -c "$lock" -r requirements/build.in
    $PIP wheel -q --no-deps --no-build-isolation -w "$dist" .
    ;;
  install)
    set -- "$dist"/llmswitch-*.whl
    if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
      echo "install.sh: expected exactly one llmswitch wheel in $dist" >&2
      exit 1
    fi
    $PIP install -q -c "$lock" "$1[postgres,redis,otel]"
    ;;
  *)
    echo "install.sh: unknown step '$what' (wheel or install)" >&2
    exit 2
    ;;
esac
