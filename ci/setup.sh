#!/usr/bin/env bash
# Installs what pxtr's build, tests and lab need on Debian 12 (bookworm), as root. Idempotent:
# packages already present are not fetched again. Only Debian's package registry is used here
# (perf/trex/check.sh, run by ci/test.sh, takes TRex's client library from PyPI, pinned).
#
#   ci/setup.sh                  packages only
#   PXTR_HUGEPAGES=512 ci/setup.sh   also reserve 512 x 2 MB hugepages and mount hugetlbfs
#                                (benchmarks; tests and the lab run without hugepages)
set -euo pipefail

PACKAGES=(
  # build: our dpdk-sys bindings (bindgen needs libclang) and DPDK itself
  pkg-config libclang-dev clang gcc libc6-dev
  dpdk dpdk-dev libdpdk-dev
  # static linking (cargo feature "static")
  libsystemd-dev
  # tests and lab: namespaces, veth, packet checks
  iproute2 iputils-ping tshark
  # the lab's stall of a control core (ci/stall-thread.py: ptrace through ctypes); the venv
  # with TRex's client library that perf/trex/check.sh makes (from PyPI)
  python3 python3-venv
  # IPsec to the cloud xTR: strongSwan's IKE daemon with its VICI plugin, and kernel-libipsec
  # (userspace ESP) for kernels without ESP
  strongswan-charon strongswan-libcharon libcharon-extra-plugins strongswan-swanctl
  # certificates made at test time (tests/ipsec_sa.rs); util-linux's unshare probes the kernel
  openssl util-linux
  # systemd-analyze checks the shipped unit (tests/systemd_unit.rs)
  systemd
  git ca-certificates
)

if [ "$(id -u)" != 0 ]; then
  echo "ci/setup.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ci/setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -q
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
fi

# promtool (Prometheus' own checker of the metrics format, for the tests): Debian ships it in the
# prometheus package, whose installation would also start a Prometheus server; only the
# binary is taken, from the package file.
if ! command -v promtool >/dev/null 2>&1; then
  dir=/opt/pxtr-promtool
  if [ ! -x "$dir/usr/bin/promtool" ]; then
    echo "ci/setup.sh: fetching promtool (from Debian's prometheus package, not installed)"
    tmp=$(mktemp -d)
    chmod a+rwx "$tmp"   # apt downloads as _apt
    if ! (cd "$tmp" && apt-get -o DPkg::Lock::Timeout=600 download -q prometheus >/dev/null); then
      apt-get -o DPkg::Lock::Timeout=600 update -q
      (cd "$tmp" && apt-get -o DPkg::Lock::Timeout=600 download -q prometheus >/dev/null)
    fi
    mkdir -p "$dir"
    dpkg-deb -x "$tmp"/prometheus_*.deb "$dir"
    rm -rf "$tmp"
  fi
  ln -sf "$dir/usr/bin/promtool" /usr/local/bin/promtool
fi

if ! command -v cargo >/dev/null 2>&1; then
  for d in "$HOME/.cargo/bin" /usr/local/cargo/bin; do
    [ -x "$d/cargo" ] && export PATH="$d:$PATH"
  done
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "ci/setup.sh: no Rust toolchain (cargo) found. pxtr needs Rust 1.81 or newer (rustup.rs);" >&2
  echo "Debian 12's own rustc (1.63) is too old." >&2
  exit 1
fi

pkg-config --atleast-version=22.11 libdpdk || {
  echo "ci/setup.sh: pkg-config does not find libdpdk >= 22.11" >&2
  exit 1
}

if [ -n "${PXTR_HUGEPAGES:-}" ]; then
  current=$(cat /proc/sys/vm/nr_hugepages)
  if [ "$current" -lt "$PXTR_HUGEPAGES" ]; then
    echo "$PXTR_HUGEPAGES" > /proc/sys/vm/nr_hugepages
  fi
  mkdir -p /dev/hugepages
  mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages
  echo "ci/setup.sh: hugepages: $(cat /proc/sys/vm/nr_hugepages) x 2 MB, mounted at /dev/hugepages"
fi
