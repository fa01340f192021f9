#!/usr/bin/env bash
# Data-plane forwarding benchmark (perf/README.md, "Data plane").
#
#   perf/dataplane.sh [--out FILE] [--seconds N] [--runs N]
#
# Generates the test traffic (dataplane-pcap, crate perf/) into a temporary directory and
# measures, for each pcap, packets per second forwarded on one core from a net_pcap port that
# replays the file from memory (infinite_rx) to a net_null port. Prints a markdown fragment to
# stdout, and to FILE with --out.
#
# Two sides, run alternately (testpmd run 1, pxtr run 1, testpmd run 2, ...) so that a change
# of CPU speed or share on this shared VM hits both: the reference, dpdk-testpmd in io mode, and
# pxtr's own worker loop (perf/src/dataplane_bench.rs: the pipeline with a filled map-cache and
# neighbour table) on the same virtual devices and core. The ratio is the median of the
# per-pair ratios. Without --out the report goes to perf/results/dataplane-<date>.md (earlier runs
# of the same day are kept below it).
#
# Run as root: it reserves 2 MB hugepages (1024, if fewer) and mounts hugetlbfs if needed.
# Takes ~2.5 minutes with the defaults (build, then 6 pcaps x 3 runs x ~7.5 s).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

out_file=""
seconds=5 # measured seconds per run (one testpmd sample per second)
runs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out_file="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "dataplane.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "dataplane.sh: run as root (EAL, hugepages)" >&2; exit 1; }

# The traffic, in table order: "file label".
TRAFFIC=(
  "encap-64-1       encap, 64 B, 1 destination"
  "encap-64-100k    encap, 64 B, 100k destinations"
  "encap-imix-100k  encap, IMIX, 100k destinations"
  "decap-64-1       decap, 64 B inner, 1 destination"
  "decap-64-100k    decap, 64 B inner, 100k destinations"
  "decap-imix-100k  decap, IMIX inner, 100k destinations"
)

# Lcores: 0 runs the main thread (stats), 1 forwards.
LCORES=0,1
# Enough mbufs for net_pcap's infinite_rx copy of a 100k-packet file (it keeps every packet of
# the file in an mbuf) plus the forwarding path.
NB_MBUFS=262144

log() { echo "$*" >&2; }

setup_hugepages() {
  local want=1024 have
  have=$(cat /proc/sys/vm/nr_hugepages)
  if [ "$have" -lt "$want" ]; then
    echo "$want" > /proc/sys/vm/nr_hugepages
    log "hugepages: $have -> $(cat /proc/sys/vm/nr_hugepages)"
  fi
  if ! grep -qs '^[^ ]* /dev/hugepages hugetlbfs' /proc/mounts; then
    mkdir -p /dev/hugepages
    mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages
    log "mounted hugetlbfs on /dev/hugepages"
  fi
}

# testpmd's arguments for one pcap (an array named by $1 is filled). Interactive (-i), with
# the commands fed on stdin by testpmd_run. --in-memory: no hugepage files are left behind.
testpmd_args() {
  local -n _tp_args=$1
  local pcap=$2
  _tp_args=(-l "$LCORES" --no-pci --in-memory --file-prefix "pxtr-perf-$$"
        --vdev "net_pcap0,rx_pcap=$pcap,infinite_rx=1" --vdev "net_null0,no-rx=1"
        -- -i --forward-mode=io --nb-cores=1 --total-num-mbufs="$NB_MBUFS" --auto-start)
}

# One testpmd run: prints the forwarding rate in Mpps. testpmd starts forwarding at once
# (--auto-start); after WARMUP seconds (EAL start-up included) "show port stats 1" starts the
# window, and a second one $seconds later prints port 1's (net_null's) Tx-pps "since last show",
# which testpmd times with the TSC. Then "quit". (--stats-period is not used: on this VM it
# prints every 1 or 2 seconds.)
WARMUP=2
testpmd_run() {
  local pcap=$1 log_file=$2 tp_args pps
  testpmd_args tp_args "$pcap"
  { sleep "$WARMUP"; echo "show port stats 1"; sleep "$seconds"; echo "show port stats 1"
    echo quit; } | timeout $((WARMUP + seconds + 60)) dpdk-testpmd "${tp_args[@]}" \
    > "$log_file" 2>&1 || true
  if grep -q 'Not enough mbufs' "$log_file"; then
    log "testpmd: net_pcap infinite_rx needs more mbufs (NB_MBUFS)"; return 1
  fi
  # The second "Tx-pps" of port 1: lines are "  Tx-pps:  N  Tx-bps:  N".
  pps=$(sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$log_file" | awk '
    /NIC statistics for port/ { port = $(NF - 1) }
    /Tx-pps:/ && port == 1 { n++; if (n == 2) print $2 }')
  if [ -z "$pps" ] || [ "$pps" = 0 ]; then
    log "testpmd: no forwarding rate; its output:"; cat "$log_file" >&2; return 1
  fi
  awk -v p="$pps" 'BEGIN { printf "%.2f\n", p / 1e6 }'
}

# The arguments as one shell command line, single-quoting those that need it.
shell_words() {
  local w line=""
  for w in "$@"; do
    [[ "$w" =~ ^[A-Za-z0-9_./:=,+-]+$ ]] || w="'${w//\'/\'\\\'\'}'"
    line+="${line:+ }$w"
  done
  echo "$line"
}

# Median of the arguments (odd count: the middle one; even: the mean of the two middle ones).
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
    END { if (NR % 2) printf "%.2f\n", v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# One pxtr run: prints "MPPS P50 P99 P999" (Mpps, per-burst latency in ns).
pxtr_run() {
  local pcap=$1 mode=$2 log_file=$3 line
  PXTR_HUGEPAGES=1 timeout $((seconds + 120)) "$bench" --pcap "$pcap" --mode "$mode" \
    --seconds "$seconds" > "$log_file" 2>&1 || true
  line=$(grep '^RESULT ' "$log_file" || true)
  if [ -z "$line" ]; then
    log "dataplane-bench: no result; its output:"; cat "$log_file" >&2; return 1
  fi
  awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
         printf "%.2f %s %s %s\n", v["mpps"], v["p50_ns"], v["p99_ns"], v["p999_ns"] }' <<< "$line"
}

# Both sides, alternating: prints "REF|PXTR|RATIO|REF_RUNS|PXTR_RUNS|LAT" (medians in Mpps;
# LAT: p50 / p99 / p99.9 per-burst latency of pxtr's median run, in microseconds).
measure_pair() {
  local pcap=$1 label=$2 mode=$3 refs=() ours=() ratios=() lats=() r o p50 p99 p999 i base
  base=$(basename "$pcap" .pcap)
  for ((i = 1; i <= runs; i++)); do
    r=$(testpmd_run "$pcap" "$tmp/testpmd-$base-$i.log")
    read -r o p50 p99 p999 <<< "$(pxtr_run "$pcap" "$mode" "$tmp/pxtr-$base-$i.log")"
    refs+=("$r"); ours+=("$o")
    ratios+=("$(awk -v a="$o" -v b="$r" 'BEGIN { printf "%.3f\n", a / b }')")
    lats+=("$o $(awk -v a="$p50" -v b="$p99" -v c="$p999" \
      'BEGIN { printf "%.1f / %.1f / %.1f", a / 1e3, b / 1e3, c / 1e3 }')")
    log "  $label, run $i: testpmd $r Mpps, pxtr $o Mpps"
  done
  local lat
  lat=$(printf '%s\n' "${lats[@]}" | sort -g | sed -n "$(( (runs + 1) / 2 ))p" | cut -d' ' -f2-)
  echo "$(median "${refs[@]}")|$(median "${ours[@]}")|$(median "${ratios[@]}")|${refs[*]}|${ours[*]}|$lat"
}

setup_hugepages

log "building dataplane-pcap and dataplane-bench"
cargo build --release -p pxtr-perf --bin dataplane-pcap --bin dataplane-bench >&2
gen="${CARGO_TARGET_DIR:-target}/release/dataplane-pcap"
bench="${CARGO_TARGET_DIR:-target}/release/dataplane-bench"
[ -n "$out_file" ] || out_file="perf/results/dataplane-$(date -u +%Y-%m-%d).md"

tmp=$(mktemp -d /tmp/pxtr-dataplane.XXXXXX)
# --in-memory still leaves an empty runtime directory behind.
trap 'rm -rf "$tmp"; rmdir "/var/run/dpdk/pxtr-perf-$$" 2>/dev/null || true' EXIT
"$gen" --out "$tmp" >&2

# This shell and its helpers stay off the forwarding lcore; testpmd sets
# its own affinity. Another busy process on the machine still skews the figures: see the load
# average in the report.
taskset -p -c 0 $$ > /dev/null
load=$(cut -d' ' -f1-3 /proc/loadavg)

rows=()
for t in "${TRAFFIC[@]}"; do
  read -r file label <<< "$t"
  pcap="$tmp/$file.pcap"
  log "$file:"
  IFS='|' read -r ref ours ratio ref_runs our_runs lat \
    <<< "$(measure_pair "$pcap" "$label" "${file%%-*}")"
  rows+=("| $label | $ref | $ours | **$ratio** | $lat | $ref_runs | $our_runs |")
done

testpmd_args cmd FILE.pcap
report=$(
  echo "# Data plane: pxtr worker vs dpdk-testpmd io, net_pcap (infinite_rx) -> net_null"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), \`perf/dataplane.sh\` (commit" \
       "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)), DPDK" \
       "$(pkg-config --modversion libdpdk 2>/dev/null || echo unknown)," \
       "$runs runs of $seconds s per traffic, one forwarding core."
  echo
  echo "| traffic | testpmd io Mpps (median of $runs) | pxtr Mpps (median) | pxtr / testpmd (median of pairs) | pxtr per-burst latency p50 / p99 / p99.9 (µs) | testpmd runs | pxtr runs |"
  echo "|---|---:|---:|---:|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Command (FILE.pcap: each generated file in turn):"
  echo
  echo '```'
  echo "dpdk-testpmd $(shell_words "${cmd[@]}")"
  echo "PXTR_HUGEPAGES=1 dataplane-bench --pcap FILE.pcap --mode encap|decap --seconds $seconds"
  echo '```'
  echo
  echo "pxtr: one worker (the appliance's worker loop) on lcore 1, burst 32. Encap files: a"
  echo "map-cache mapping per destination /32 over 300 RLOCs (and 10.2.0.0/16), the gateway's MAC"
  echo "known, RLOC-side MTU 9000. Decap files: a neighbour entry per inner destination. The"
  echo "latency is per burst (32 packets, receive to transmit) from the worker's own histogram."
  echo
  echo "Machine:"
  echo
  echo '```'
  lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|Hypervisor)' || true
  echo "Load average before the runs: $load"
  echo '```'
)
echo "$report"
if [ -n "$out_file" ]; then
  # A file of the same day keeps its earlier runs below the new one, a heading level down.
  if [ -s "$out_file" ]; then
    earlier=$(sed 's/^#/##/' "$out_file")
    { echo "$report"; echo; echo "# Earlier runs in this file"; echo; echo "$earlier"; } > "$out_file"
  else
    echo "$report" > "$out_file"
  fi
  log "written: $out_file"
fi
