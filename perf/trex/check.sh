#!/usr/bin/env bash
# Offline checks of the TRex profiles, and the pcaps tests/trex_profiles.rs feeds through
# pxtr's pipeline: makes (once) a Python venv in target/trex/venv with TRex's client library
# (PyPI lbr-trex-client, pinned), then runs perf/trex/check.py, which writes
# target/trex/pcaps/<profile>-d<direction>-<size>.pcap. ci/test.sh runs it before cargo test;
# by hand: perf/trex/check.sh && cargo test --test trex_profiles
set -euo pipefail
cd "$(dirname "$0")/../.."

TREX_CLIENT="lbr-trex-client==3.4.0"
VENV=target/trex/venv
PY=${PYTHON:-python3}

if ! "$VENV/bin/python" -c 'import lbr_trex_client' >/dev/null 2>&1 ||
   [ "$(cat "$VENV/.requirement" 2>/dev/null)" != "$TREX_CLIENT" ]; then
  echo "perf/trex/check.sh: making $VENV with $TREX_CLIENT"
  rm -rf "$VENV"
  mkdir -p target/trex
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$TREX_CLIENT"
  echo "$TREX_CLIENT" > "$VENV/.requirement"
fi
exec "$VENV/bin/python" perf/trex/check.py target/trex/pcaps
