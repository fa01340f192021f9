#!/usr/bin/env bash
# The seed's hybrid cloud in network namespaces (issue #7): the enterprise PxTR-1 and the cloud
# xTR-1, each a `pxtr run` on DPDK net_tap ports with strongSwan beside it, an IPsec tunnel
# between them across a WAN router, VM-A and the enterprise gateway on the enterprise server
# subnet, a non-LISP branch behind that gateway, and VM-B (which keeps its enterprise address)
# in the cloud. The README's main command.
#
#   ci/hybrid-lab.sh [--keep]
#
# Sets it up, runs the walks — (a) VM-A -> VM-B, (b) branch -> VM-B, (c) VM-A moves to the
# cloud and back — and the failures — PxTR-1's control core stalled for 5 s, the IPsec SA down
# and back — checks that only ESP crossed the WAN, prints a table (one row per walk: pass or
# FAIL, first-packet delay or time until traffic flows again), tears it down, and exits 0 only
# if every row passed. Run by hand it installs what it needs (ci/setup.sh) and builds pxtr;
# PXTR=path/to/pxtr skips both.
#
# Namespaces (all named pxlab-*), links and processes are removed at the end, on failure and on
# Ctrl-C; --keep leaves them up (for poking around) until Ctrl-C. A second run starts afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
keep=0
[ "${1:-}" = "--keep" ] && keep=1

if [ -z "${PXTR:-}" ]; then
  # Run by hand: what it needs (strongSwan, tshark, ping, DPDK) and a release build.
  ci/setup.sh >&2
  cargo build --locked --release >&2
  PXTR=target/release/pxtr
fi
CHARON=/usr/lib/ipsec/charon
# One lab at a time on a host: the namespaces have fixed names.
exec 5> /run/pxtr-hybrid-lab.lock
if ! flock -n 5; then
  echo "lab: another hybrid lab is running on this host; waiting for it (up to 10 min)" >&2
  flock -w 600 5 || { echo "lab: the other lab is still running: giving up" >&2; exit 1; }
fi
DIR=$(mktemp -d /tmp/pxlab.XXXXXX)
NS="pxlab-wan pxlab-px pxlab-xt pxlab-vma pxlab-vmb pxlab-gw pxlab-br"
KEY="hybrid-cloud-lab-psk-0123456789"
SITE_KEY="hybrid-cloud-site-key"

# The script's own stdout and stderr, for the teardown.
exec 3>&1 4>&2
log() { echo "lab: $*" >&2; }
inns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
# Pings from namespace $1 to $2, one at a time, until one is answered (30 tries): succeeds and
# sets $took (ms since the first try), or fails.
until_reply() {
  local t0
  t0=$(date +%s%N)
  for _ in $(seq 30); do
    if inns "$1" ping -c 1 -W 1 "$2" > /dev/null 2>&1; then
      took=$(( ($(date +%s%N) - t0) / 1000000 )); return 0
    fi
  done
  return 1
}

# Results: one row per walk or failure case, printed as a table at the end (also after a
# failure or Ctrl-C).
results=()
failed=0
record() { # name, pass|FAIL, detail
  results+=("$1|$2|$3")
  [ "$2" = pass ] || failed=1
  log "$1: $2, $3"
}
# Records, as row $1, whether namespace $2 gets a reply from $3, and after how long.
expect_reply() { # name, namespace, address, "first reply after" | "traffic again after"
  if until_reply "$2" "$3"; then record "$1" pass "$4 $took ms"; else record "$1" FAIL "no reply in 30 tries"; fi
}
# The sum over PxTR-1's workers of a data-plane counter, from their latest statistics lines.
counter() {
  grep ' worker lcore=' "$DIR/pxtr-1.log" | awk -v k="$1" '{
    l = ""
    for (i = 1; i <= NF; i++) {
      f = $i; sub(/^counts=/, "", f)
      if (f ~ /^lcore=/) l = f
      if (index(f, k "=") == 1) v[l] = substr(f, length(k) + 2)
    }
  } END { s = 0; for (x in v) s += v[x]; print s }'
}
summary() {
  [ "${#results[@]}" -gt 0 ] || return 0
  echo >&2
  printf '%-44s %-6s %s\n' "WALK" "RESULT" "DETAIL" >&2
  for r in "${results[@]}"; do
    IFS='|' read -r n st d <<< "$r"
    printf '%-44s %-6s %s\n' "$n" "$st" "$d" >&2
  done
  echo >&2
}

teardown() {
  set +e
  # A second Ctrl-C must not cut the cleanup short.
  trap '' INT TERM
  # A Ctrl-C lands inside whatever runs, with its redirections (e.g. a ping's > ping.out):
  # back to the script's own output first.
  exec 1>&3 2>&4
  summary
  local pids=()
  for f in "$DIR"/*.pid; do
    [ -f "$f" ] && pids+=("$(cat "$f")")
  done
  [ "${#pids[@]}" -gt 0 ] && kill "${pids[@]}" 2>/dev/null
  # Up to 5 s to stop on SIGTERM (pxtr drains its ports, charon deletes its SAs), then SIGKILL.
  for _ in $(seq 50); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      log "process $p did not stop on SIGTERM: killed"
      kill -9 "$p" 2>/dev/null
    fi
  done
  wait "${pids[@]}" 2>/dev/null
  for ns in $NS; do ip netns del "$ns" 2>/dev/null; done
  if [ "$keep" = 0 ]; then rm -rf "$DIR"; else log "files kept in $DIR"; fi
}
trap teardown EXIT
trap 'exit 130' INT TERM

for ns in $NS; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; inns "$ns" ip link set lo up; done

# WAN: the router between the enterprise (198.51.100.0/24) and the cloud (203.0.113.0/24).
ip link add px-wan netns pxlab-px type veth peer name wan-px netns pxlab-wan
ip link add xt-wan netns pxlab-xt type veth peer name wan-xt netns pxlab-wan
inns pxlab-wan ip addr add 198.51.100.254/24 dev wan-px
inns pxlab-wan ip addr add 203.0.113.254/24 dev wan-xt
inns pxlab-wan ip link set wan-px up
inns pxlab-wan ip link set wan-xt up
inns pxlab-wan sysctl -qw net.ipv4.ip_forward=1
inns pxlab-px ip addr add 198.51.100.1/24 dev px-wan
inns pxlab-px ip link set px-wan up
inns pxlab-px ip route add default via 198.51.100.254
inns pxlab-xt ip addr add 203.0.113.1/24 dev xt-wan
inns pxlab-xt ip link set xt-wan up
inns pxlab-xt ip route add default via 203.0.113.254
for ns in pxlab-px pxlab-xt; do inns "$ns" sysctl -qw net.ipv4.ip_forward=1; done

# The server subnets: a bridge in each appliance's namespace, the VM behind a veth.
for side in px:vma:10.1.1.10 xt:vmb:10.1.1.20; do
  IFS=: read -r a vm addr <<< "$side"
  inns "pxlab-$a" ip link add br-eid type bridge
  inns "pxlab-$a" ip link set br-eid up
  ip link add "$vm-br" netns "pxlab-$a" type veth peer name eth0 netns "pxlab-$vm"
  inns "pxlab-$a" ip link set "$vm-br" master br-eid up
  inns "pxlab-$vm" ip addr add "$addr/24" dev eth0
  inns "pxlab-$vm" ip link set eth0 up
  inns "pxlab-$vm" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
# VM-B keeps its enterprise address and gateway; xTR-1 answers for the gateway.
inns pxlab-vmb ip route add default via 10.1.1.1
inns pxlab-vma ip route add default via 10.1.1.1
# The enterprise gateway (10.1.1.1 on the server subnet) and a non-LISP branch behind it.
ip link add gw-br netns pxlab-px type veth peer name eth0 netns pxlab-gw
inns pxlab-px ip link set gw-br master br-eid up
ip link add eth1 netns pxlab-gw type veth peer name eth0 netns pxlab-br
inns pxlab-gw ip addr add 10.1.1.1/24 dev eth0
inns pxlab-gw ip addr add 172.20.0.1/24 dev eth1
inns pxlab-gw ip link set eth0 up
inns pxlab-gw ip link set eth1 up
inns pxlab-gw sysctl -qw net.ipv4.ip_forward=1
inns pxlab-gw sysctl -qw net.ipv6.conf.all.disable_ipv6=1
inns pxlab-br ip addr add 172.20.0.10/24 dev eth0
inns pxlab-br ip link set eth0 up
inns pxlab-br ip route add default via 172.20.0.1
inns pxlab-br sysctl -qw net.ipv6.conf.all.disable_ipv6=1

# strongSwan beside each appliance: userspace ESP (kernel-libipsec, TUN ipsec0) and its own
# /run.
start_charon() {
  local ns=$1 name=$2
  mkdir -p "$DIR/$name"
  cat > "$DIR/$name/strongswan.conf" <<EOF
charon {
  load_modular = no
  load = random nonce pem pkcs1 x509 pubkey socket-default kernel-libipsec kernel-netlink vici kdf hmac sha1 sha2 aes gmp
  install_routes = no
  plugins {
    vici { socket = unix://$DIR/$name/charon.vici }
  }
  filelog { f { path = $DIR/$name/charon.log
    default = 1 } }
}
EOF
  STRONGSWAN_CONF="$DIR/$name/strongswan.conf" ip netns exec "$ns" unshare --mount --propagation private \
    sh -c "mount -t tmpfs tmpfs /run && exec $CHARON" > "$DIR/$name/charon.out" 2>&1 &
  echo $! > "$DIR/charon-$name.pid"
  for _ in $(seq 100); do [ -S "$DIR/$name/charon.vici" ] && return 0; sleep 0.1; done
  log "charon in $ns did not start"; cat "$DIR/$name/charon.log" >&2; return 1
}
start_charon pxlab-px px
start_charon pxlab-xt xt

# The appliances' configurations.
common() { # role, name, eid mac, rloc mac, rloc, peer rloc range, wan, peer wan, peer name, vici
  cat <<EOF
[appliance]
name = "$2"
role = "$1"
[eal]
hugepages = false
memory_mb = 256
in_memory = true
file_prefix = "$2"
[mempool]
mbufs = 8191
cache = 128
[[ports]]
name = "eid0"
device = "net_tap0,iface=$2-eid,mac=$3"
role = "eid"
addresses = ["10.1.1.$([ "$1" = pxtr ] && echo 5 || echo 2)/24"]
rx_descriptors = 256
tx_descriptors = 256
[[ports]]
name = "rloc0"
device = "net_tap1,iface=$2-rloc,mac=$4"
role = "rloc"
addresses = ["$5/24"]
gateway = "${5%.*}.254"
# The host kernel's side of the tap (pxtr sets it up): it routes into the IPsec tunnel.
kernel_addresses = ["${5%.*}.254/24"]
rx_descriptors = 256
tx_descriptors = 256
[lcores]
control = 0
workers = [
  { lcore = 1, cpu = 1, port = "eid0", queue = 0 },
  { lcore = 2, cpu = 1, port = "rloc0", queue = 0 },
]
[dataplane]
idle = "adaptive"
# The first packets to an EID not resolved yet wait for the Map-Reply (a few per
# destination), so the walks show the first-packet delay rather than a lost first ping.
miss_policy = "queue"
[lisp]
rlocs = ["$5"]
map_resolvers = ["100.64.1.1"]
map_servers = [{ address = "100.64.1.1", key_id = 2, key = "$SITE_KEY" }]
dynamic_eids = [{ name = "servers", iid = 0, prefix = "10.1.1.0/24", port = "eid0" }]
[ipsec]
mode = "libipsec"
vici_socket = "${10}"
[[ipsec.peers]]
name = "$9"
local_address = "$7"
remote_address = "$8"
remote_rlocs = ["$6"]
auth = "psk"
psk = "$KEY"
ike_proposals = ["aes256-sha256-modp2048"]
esp_proposals = ["aes256-sha256"]
[control]
stats_interval_s = 1
socket = "$DIR/$2.sock"
EOF
}
common pxtr pxtr-1 02:00:00:00:01:01 02:00:00:00:01:02 100.64.1.1 100.64.2.0/24 \
  198.51.100.1 203.0.113.1 to-xtr-1 "$DIR/px/charon.vici" > "$DIR/pxtr-1.toml"
cat >> "$DIR/pxtr-1.toml" <<EOF
[map_server]
enabled = true
sites = [{ name = "hybrid", key_id = 2, key = "$SITE_KEY", eid_prefixes = [{ prefix = "10.1.0.0/16", accept_more_specifics = true }] }]
EOF
common xtr xtr-1 02:00:00:00:02:01 02:00:00:00:02:02 100.64.2.1 100.64.1.0/24 \
  203.0.113.1 198.51.100.1 to-pxtr-1 "$DIR/xt/charon.vici" > "$DIR/xtr-1.toml"
# xTR-1 answers ARP for the enterprise gateway address VM-B keeps using, and sends traffic for
# non-LISP destinations to PxTR-1 as its PETR; PxTR-1 hands what it decapsulates for them to
# the enterprise gateway.
sed -i 's/^role = "eid"$/role = "eid"\nanswer_arp_for = ["10.1.1.1"]/' "$DIR/xtr-1.toml"
sed -i 's/^map_resolvers = .*/&\npetrs = ["100.64.1.1"]/' "$DIR/xtr-1.toml"
sed -i 's/^role = "eid"$/role = "eid"\ngateway = "10.1.1.1"/' "$DIR/pxtr-1.toml"

start_pxtr() {
  local ns=$1 name=$2
  RUST_LOG=info ip netns exec "$ns" "$PXTR" run --config "$DIR/$name.toml" > "$DIR/$name.log" 2>&1 &
  echo $! > "$DIR/$name.pid"
  # Ports started (DPDK sets the taps' MAC when it starts them).
  for _ in $(seq 300); do
    grep -q 'running; Ctrl-C' "$DIR/$name.log" && break
    sleep 0.1
  done
  grep -q 'running; Ctrl-C' "$DIR/$name.log" || { log "$name did not start"; cat "$DIR/$name.log" >&2; return 1; }
  # pxtr gave the kernel sides of its taps MACs of their own and brought them up; the EID
  # tap joins the server subnet's bridge.
  inns "$ns" ip link set "$name-eid" master br-eid
}
start_pxtr pxlab-px pxtr-1
start_pxtr pxlab-xt xtr-1

# Wait for the tunnel.
for _ in $(seq 100); do
  grep -q 'IPsec SA change=Up' "$DIR/pxtr-1.log" && grep -q 'IPsec SA change=Up' "$DIR/xtr-1.log" && break
  sleep 0.2
done
grep -q 'IPsec SA change=Up' "$DIR/pxtr-1.log" || { log "no IPsec SA"; tail -20 "$DIR/pxtr-1.log" >&2; exit 1; }
log "IPsec SA up"

# Everything that crosses the WAN is captured: it must be ESP, never cleartext LISP.
ip netns exec pxlab-wan tshark -q -i wan-px -w "$DIR/wan.pcap" > "$DIR/tshark.out" 2>&1 &
echo $! > "$DIR/tshark.pid"
for _ in $(seq 100); do grep -q "Capturing on" "$DIR/tshark.out" && break; sleep 0.1; done

# Walk (a): VM-A pings VM-B. VM-B first says hello to its gateway (xTR-1 detects it); PxTR-1
# answers VM-A's ARP for VM-B once the mapping system says VM-B is in the cloud.
inns pxlab-vmb ping -c 2 -W 1 10.1.1.1 > /dev/null || true
if until_reply pxlab-vma 10.1.1.20; then
  inns pxlab-vma ping -c 5 -i 0.2 -W 1 10.1.1.20 > "$DIR/ping.out" 2>&1 || true
  got=$(grep -o '[0-9]* received' "$DIR/ping.out" | cut -d' ' -f1 || true)
  if [ "${got:-0}" = 5 ]; then
    record "walk (a) VM-A -> VM-B" pass "first reply after $took ms; then 5 of 5 pings"
  else
    record "walk (a) VM-A -> VM-B" FAIL "first reply after $took ms; then ${got:-0} of 5 pings"
  fi
else
  record "walk (a) VM-A -> VM-B" FAIL "no reply in 30 tries"
fi

# Walk (b): a host of the non-LISP branch reaches VM-B through the enterprise gateway, which
# PxTR-1 answers ARP for VM-B to; VM-B's replies come back through PxTR-1 as PETR.
expect_reply "walk (b) branch -> VM-B" pxlab-br 10.1.1.20 "first reply after"

# Walk (c): a cold move of VM-A to the cloud and back while the branch keeps talking to it.
# Moving it is moving its link to the other site's server subnet; it keeps its address. Each
# time it says hello to its gateway (as a booting VM would): the site it is at detects it,
# registers it, the Map-Server tells the old site, which withdraws it (and, at the enterprise,
# announces VM-A at PxTR-1's MAC so the gateway sends to PxTR-1).
move() { # from, to
  inns "pxlab-$1" ip link set vma-br netns "pxlab-$2"
  inns "pxlab-$2" ip link set vma-br master br-eid up
  inns pxlab-vma ping -c 1 -W 1 10.1.1.1 > /dev/null 2>&1 || true
}
expect_reply "walk (c) branch -> VM-A at the enterprise" pxlab-br 10.1.1.10 "first reply after"
move px xt
expect_reply "walk (c) VM-A moved to the cloud" pxlab-br 10.1.1.10 "traffic again after"
move xt px
expect_reply "walk (c) VM-A moved back" pxlab-br 10.1.1.10 "traffic again after"

# Failure: PxTR-1's control core stalls for 5 s (its thread stopped with ptrace; the workers
# run on). The branch's flow to VM-B is cached: it must keep flowing, and PxTR-1 must notice.
stalls() { grep -c 'the control core did not run' "$DIR/pxtr-1.log" || true; }
before=$(stalls)
python3 ci/stall-thread.py "$(cat "$DIR/pxtr-1.pid")" pxtr 5 > "$DIR/stall.out" 2>&1 &
stall=$!
echo "$stall" > "$DIR/stall.pid"   # killed at teardown: the thread goes on when it exits
for _ in $(seq 50); do grep -q "tracing stop" "/proc/$(cat "$DIR/pxtr-1.pid")/task/$(cat "$DIR/pxtr-1.pid")/status" 2>/dev/null && break; sleep 0.1; done
inns pxlab-br ping -c 20 -i 0.2 -W 1 10.1.1.20 > "$DIR/ping.out" 2>&1 || true
wait "$stall" || true
rm -f "$DIR/stall.pid"
got=$(grep -o '[0-9]* received' "$DIR/ping.out" | cut -d' ' -f1 || true)
for _ in $(seq 30); do [ "$(stalls)" -gt "$before" ] && break; sleep 0.1; done
seen=$(grep -o 'stalled_ms=[0-9]*' "$DIR/pxtr-1.log" | tail -1 | cut -d= -f2 || true)
if [ "$(stalls)" -gt "$before" ] && [ "${got:-0}" = 20 ]; then
  record "failure: control core stalled" pass "${got} of 20 pings during the ${seen} ms stall"
else
  record "failure: control core stalled" FAIL "${got:-0} of 20 pings; $(cat "$DIR/stall.out"); stall logged: ${seen:-no}"
fi

# Failure: the IPsec SA goes down and stays down while the WAN is cut: PxTR-1 marks xTR-1's
# RLOCs unreachable and counts the branch's packets to VM-B as dropped (no usable RLOC); when
# the WAN is back, PxTR-1's manager brings the SA up again (it initiates peers without one
# every 5 s), and with it the traffic.
sa() { grep -c "IPsec SA change=$1" "$DIR/pxtr-1.log" || true; }
downs=$(sa Down); ups=$(sa Up)
drops0=$(counter drop_no_usable_rloc)
inns pxlab-wan ip link set wan-px down
swanctl --terminate --ike to-xtr-1 --force --uri "unix://$DIR/px/charon.vici" > /dev/null 2>&1 || true
for _ in $(seq 50); do [ "$(sa Down)" -gt "$downs" ] && break; sleep 0.1; done
inns pxlab-br ping -c 3 -i 0.2 -W 1 10.1.1.20 > /dev/null 2>&1 || true
# The workers' counters reach the log once a second.
for _ in $(seq 30); do [ "$(counter drop_no_usable_rloc)" -gt "$drops0" ] && break; sleep 0.1; done
dropped=$(( $(counter drop_no_usable_rloc) - drops0 ))
inns pxlab-wan ip link set wan-px up
if until_reply pxlab-br 10.1.1.20; then back=1; else back=0; fi
for _ in $(seq 100); do [ "$(sa Up)" -gt "$ups" ] && break; sleep 0.1; done
if [ "$(sa Down)" -gt "$downs" ] && [ "$(sa Up)" -gt "$ups" ] && [ "$dropped" -gt 0 ] && [ "$back" = 1 ]; then
  record "failure: IPsec SA down and back" pass "$dropped packets counted dropped while down; traffic again $took ms after the WAN returned"
else
  record "failure: IPsec SA down and back" FAIL "SA down seen: $(( $(sa Down) - downs )), up: $(( $(sa Up) - ups )), dropped: $dropped, traffic back: $back"
  grep 'IPsec' "$DIR/pxtr-1.log" | tail -5 >&2
fi

# Operations: PxTR-1 answers `pxtr ctl` (its map-cache has VM-B at xTR-1's RLOC) and its
# metrics endpoint (in its namespace) says the IPsec peer is up.
mc=$("$PXTR" ctl --socket "$DIR/pxtr-1.sock" --json show map-cache 10.1.1.20 2>&1 || true)
metrics=$(inns pxlab-px bash -c 'exec 3<>/dev/tcp/127.0.0.1/9742 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3' 2>&1 || true)
if grep -q '"prefix": "10.1.1.20/32"' <<< "$mc" && grep -q '"address": "100.64.2.1"' <<< "$mc" \
  && grep -q '^pxtr_ipsec_peer_up{peer="to-xtr-1"} 1' <<< "$metrics"; then
  record "ops: pxtr ctl and metrics" pass "map-cache has VM-B at 100.64.2.1; pxtr_ipsec_peer_up 1"
else
  record "ops: pxtr ctl and metrics" FAIL "ctl: $(head -c 300 <<< "$mc"); metrics: $(grep -m1 pxtr_ipsec_peer_up <<< "$metrics" || echo none)"
fi

# The WAN capture: only ESP.
tshark=$(cat "$DIR/tshark.pid"); rm -f "$DIR/tshark.pid"
kill -INT "$tshark"; wait "$tshark" 2>/dev/null || true
esp=$( (tshark -r "$DIR/wan.pcap" -Y esp 2>/dev/null || true) | wc -l)
clear=$( (tshark -r "$DIR/wan.pcap" -Y 'lisp || lisp-data' 2>/dev/null || true) | wc -l)
if [ "$esp" -gt 0 ] && [ "$clear" = 0 ]; then
  record "WAN carries only ESP" pass "$esp ESP packets, no cleartext LISP"
else
  record "WAN carries only ESP" FAIL "$esp ESP packets, $clear cleartext LISP packets"
fi

if [ "$failed" = 1 ]; then
  for f in "$DIR/pxtr-1.log" "$DIR/xtr-1.log"; do log "last lines of $f:"; tail -n 30 "$f" >&2; done
fi
if [ "$keep" = 1 ]; then log "kept up: e.g. $PXTR ctl --socket $DIR/pxtr-1.sock show map-cache (or xtr-1.sock); Ctrl-C to tear down"; sleep infinity & echo $! > "$DIR/sleep.pid"; wait "$(cat "$DIR/sleep.pid")"; fi
exit "$failed"
