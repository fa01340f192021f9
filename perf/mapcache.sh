#!/usr/bin/env bash
# Map-cache lookup/update benchmark against DPDK rte_lpm / rte_lpm6, one binary, one run.
#
#   perf/mapcache.sh            full run (~2-3 minutes), writes perf/results/mapcache-<date>.md
#   perf/mapcache.sh --smoke    tiny sizes, a few seconds; exits non-zero if our answers differ
#                               from rte_lpm's (for CI)
#
# Uses 2 MB hugepages for DPDK when PXTR_HUGEPAGES is set (PXTR_HUGEPAGES=512 ci/setup.sh),
# --no-huge otherwise. Run as root (EAL).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -p pxtr-perf --bin mapcache-bench
bin="${CARGO_TARGET_DIR:-target}/release/mapcache-bench"
if [ "${1:-}" = "--smoke" ]; then
  exec "$bin" --smoke
fi
out="perf/results/mapcache-$(date -u +%Y-%m-%d).md"
tmp=$(mktemp)
"$bin" --out "$tmp"
{
  echo "# Map-cache benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: \`perf/mapcache.sh\` (commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)," \
       "PXTR_HUGEPAGES=${PXTR_HUGEPAGES:-unset})"
  echo
  echo "Machine:"
  echo
  echo '```'
  lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|L1d|L2|L3|Hypervisor)' || true
  echo '```'
  echo
  cat "$tmp"
} > "$out"
rm -f "$tmp"
echo "written: $out"
