#!/usr/bin/env bash
# The main job on its embedded default: builds pxtr (release) and runs it on the embedded lab
# configuration (DPDK virtual devices, no NIC, no hugepages) until Ctrl-C.
# Extra arguments go to `pxtr run`, e.g. `ci/lab.sh --duration 10`.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
cargo build --locked --release
exec target/release/pxtr run "$@"
