#!/usr/bin/env bash
# The test command: installs what it needs (ci/setup.sh), then checks formatting and lints and
# runs every test against real DPDK on virtual devices. Run as root from anywhere in the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== TRex profiles, offline (perf/trex/check.sh: load, JSON, pcaps for tests/trex_profiles.rs)"
perf/trex/check.sh
echo "== cargo test"
cargo test --locked --workspace --all-targets
echo "== map-cache benchmark, smoke mode (answers must equal DPDK rte_lpm's)"
perf/mapcache.sh --smoke
echo "== fuzz (bounded)"
ci/fuzz.sh "${PXTR_FUZZ_SECONDS:-15}"
