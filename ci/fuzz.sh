#!/usr/bin/env bash
# Builds the libFuzzer targets under fuzz/ with stable Rust (coverage instrumentation through
# -C flags, no nightly sanitizers) and runs each for a bounded time.
#   ci/fuzz.sh [SECONDS_PER_TARGET]   (default 20)
# Corpora persist in fuzz/corpus/<target>; crashes land in fuzz/artifacts/<target>.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-20}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros (as cargo fuzz does).
triple=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --bins --target "$triple"
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^pxtr-fuzz$')
status=0
for t in $targets; do
  mkdir -p "corpus/$t" "artifacts/$t"
  echo "== fuzz $t for ${seconds}s"
  if ! "$CARGO_TARGET_DIR/$triple/release/$t" "corpus/$t" -max_total_time="$seconds" \
      -artifact_prefix="artifacts/$t/" -print_final_stats=1 2>"artifacts/$t.log"; then
    echo "fuzz target $t FAILED; see fuzz/artifacts/$t.log and fuzz/artifacts/$t/" >&2
    tail -30 "artifacts/$t.log" >&2
    status=1
  fi
  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "artifacts/$t.log" | sed "s/^/  $t: /"
done
exit $status
