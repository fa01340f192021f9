# pxtr in a container: DPDK 22.11 (Debian 12) linked statically into one binary, on a slim
# Debian 12 runtime that carries only the shared system libraries that binary still needs.
#
# Build (x86_64; needs the internet for the base images, Debian's packages and crates.io):
#
#   docker build --build-arg GIT_COMMIT=$(git rev-parse --short=12 HEAD) -t pxtr .
#
# Run with full device access (hugepages, VFIO, sysfs, host networking):
#
#   docker run --rm -it --privileged --network host -v /dev/hugepages:/dev/hugepages -v /sys/bus/pci:/sys/bus/pci -v /sys/devices/system/node:/sys/devices/system/node -v /dev/vfio:/dev/vfio -v /etc/pxtr/pxtr.toml:/etc/pxtr/pxtr.toml:ro pxtr
#
# Least-privilege variant, for NICs bound to vfio-pci behind an IOMMU. VFIO_GROUP is the NIC's
# IOMMU group (one --device per group, for each NIC in the config). IPC_LOCK and the memlock
# ulimit let VFIO pin DMA memory; NET_ADMIN and NET_RAW cover kernel-facing interfaces and
# iproute2; SYS_RAWIO allows the port I/O (iopl/ioperm) some PMDs use; SYS_NICE is what Docker's
# default seccomp profile asks before it allows get_mempolicy/set_mempolicy/mbind, which DPDK uses
# to put hugepage memory on the NIC's NUMA node (without it DPDK falls back to NUMA-unaware memory).
# A net_tap port (the exception port toward the IPsec tunnel) also needs --device /dev/net/tun,
# and ipsec.mode = "auto" can only probe the kernel for XFRM interfaces with SYS_ADMIN (without
# it pxtr says so and uses userspace ESP; set mode = "xfrm" or "libipsec" explicitly).
#
#   VFIO_GROUP=$(basename "$(readlink /sys/bus/pci/devices/0000:01:00.0/iommu_group)")
#   docker run --rm -it --network host --cap-add IPC_LOCK --cap-add NET_ADMIN --cap-add NET_RAW --cap-add SYS_RAWIO --cap-add SYS_NICE --ulimit memlock=-1 --device /dev/vfio/vfio --device "/dev/vfio/$VFIO_GROUP" -v /dev/hugepages:/dev/hugepages -v /etc/pxtr/pxtr.toml:/etc/pxtr/pxtr.toml:ro pxtr
#
# Any other subcommand replaces the default one, e.g. (no devices or privileges needed):
#
#   docker run --rm -v /etc/pxtr/pxtr.toml:/etc/pxtr/pxtr.toml:ro pxtr check-config /etc/pxtr/pxtr.toml
#   docker run --rm pxtr default-config

FROM rust:1-bookworm AS build

# What `cargo build --features static` needs: DPDK's headers, pkg-config file and static
# archives (libdpdk-dev, which pulls in the -dev packages of every system library the drivers
# use), libclang and clang for bindgen, and libsystemd-dev: libpcap's static link flags (through
# dbus-1) include -lsystemd, which needs libsystemd.so at link time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        clang \
        libclang-dev \
        libdpdk-dev \
        libsystemd-dev \
        pkg-config \
    && rm -rf /var/lib/apt/lists/*

# .git is not copied (.dockerignore): the commit for `pxtr --version` comes in as an argument.
ARG GIT_COMMIT=unknown
ENV GIT_COMMIT=$GIT_COMMIT
WORKDIR /src
COPY . .
RUN cargo build --release --locked --features static \
    && install -D -m 0755 target/release/pxtr /out/pxtr

FROM debian:bookworm-slim

# The shared libraries the static binary still links (its NEEDED entries other than glibc's,
# libgcc_s and zlib, which the slim image has): libipsec-mb1 libatomic1 libnuma1 libfdt1 libbsd0
# libibverbs1 ibverbs-providers (libmlx4, libmlx5) libssl3 (libcrypto) libxdp1 libbpf1 libpcap0.8
# libisal2 libjansson4. No librte_* package: DPDK is inside the binary.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates \
        iproute2 \
        ibverbs-providers \
        libatomic1 \
        libbpf1 \
        libbsd0 \
        libfdt1 \
        libibverbs1 \
        libipsec-mb1 \
        libisal2 \
        libjansson4 \
        libnuma1 \
        libpcap0.8 \
        libssl3 \
        libxdp1 \
    && rm -rf /var/lib/apt/lists/*

COPY --from=build /out/pxtr /usr/local/bin/pxtr
# Fails the build if a shared library the binary needs is missing from the list above.
RUN /usr/local/bin/pxtr --version && mkdir -p /etc/pxtr

ENTRYPOINT ["/usr/local/bin/pxtr"]
CMD ["run", "--config", "/etc/pxtr/pxtr.toml"]
