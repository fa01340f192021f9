"""The TRex lab around one pxtr appliance: addresses, MACs and stream builders shared by the
profiles in this folder (eid_to_rloc.py, decap.py, non_lisp_site.py, mix.py).

Wiring (perf/trex/trex_cfg.yaml, perf/trex/pxtr-under-trex.toml):

    TRex port 0  <-->  pxtr eid0   server subnet 10.1.1.0/24: TRex plays the local hosts
                                   10.1.1.100-115 and the enterprise gateway 10.1.1.1
    TRex port 1  <-->  pxtr rloc0  underlay 100.64.1.0/24: TRex plays the underlay router
                                   100.64.1.254, behind which are the remote xTRs' RLOCs

A profile's `direction` is the side it sends into: 0 = pxtr's eid0, 1 = pxtr's rloc0 (TRex
gives even ports direction 0 and odd ports direction 1, which matches the wiring).

Sizes follow RFC 2544 and TRex: a "64-byte" frame is 64 bytes on the wire with the FCS, so
TRex builds 60 bytes. For LISP-encapsulated traffic the size is the inner frame's (the frame
the hosts see); the outer headers add 36 bytes of IPv4 + UDP + LISP to it.
"""

import argparse

from trex.stl.api import (
    IP,
    UDP,
    Ether,
    Packet,
    Raw,
    STLPktBuilder,
    STLScVmRaw,
    STLStream,
    STLTXCont,
    STLVmFixIpv4,
    STLVmFlowVar,
    STLVmFlowVarRepeatableRandom,
    STLVmWrFlowVar,
)
from scapy.fields import BitField, XByteField, X3BytesField

# MACs. TRex's are its ports' (trex_cfg.yaml src_mac); pxtr's are its NICs' (`pxtr run` logs
# them per port at start): write the real ones into trex_cfg.yaml's dest_mac.
TREX_MAC = ("02:74:72:00:00:00", "02:74:72:00:00:01")
PXTR_MAC = ("02:70:78:00:00:00", "02:70:78:00:00:01")

# pxtr's addresses.
EID0_ADDRESS = "10.1.1.5"
OUR_RLOC = "100.64.1.1"
# What TRex plays on each side.
ENTERPRISE_GATEWAY = "10.1.1.1"
LOCAL_HOSTS = ("10.1.1.100", 16)  # first, count: static neighbours at TRex port 0's MAC
UNDERLAY_ROUTER = "100.64.1.254"
# Remote LISP sites: 8 EID prefixes 10.64.0.0/16 .. 10.71.0.0/16, each behind its own xTR,
# RLOCs 100.64.3.1 .. 100.64.3.8 (static mappings in pxtr-under-trex.toml).
REMOTE_EIDS = ("10.64.0.0", 8)  # first /16, number of /16s
REMOTE_RLOCS = ("100.64.3.1", 8)
# The cloud site (the seed's xTR-1): EIDs 10.2.0.0/16 behind RLOC 100.64.2.1.
CLOUD_EIDS = "10.2.0.0"
CLOUD_RLOC = "100.64.2.1"
# Non-LISP sites: a branch behind the enterprise gateway, and Internet hosts (RFC 2544's
# benchmarking range) that the underlay routes to the PxTR.
BRANCH_HOSTS = "172.20.0.0"
INTERNET_HOSTS = "198.18.0.0"

LISP_DATA_PORT = 4341
# Hosts' UDP flows: source ports from 49152 (so that dissectors leave the payload alone), to
# the discard port.
SPORT_MIN = 49152
DPORT = 9
TTL = 64

# Frame sizes on the wire (with FCS) and their pps weights: IMIX 7:4:1.
IMIX = ((64, 7), (594, 4), (1518, 1))
FCS = 4


class LispData(Packet):
    """The LISP data header (RFC 9300 section 5.3): flags N L E V I, 3 reserved bits, a 24-bit
    nonce (or map-version numbers), a 24-bit instance-ID and 8 locator-status bits."""

    name = "LISP data"
    fields_desc = [
        BitField("N", 0, 1),
        BitField("L", 0, 1),
        BitField("E", 0, 1),
        BitField("V", 0, 1),
        BitField("I", 0, 1),
        BitField("flags", 0, 3),
        X3BytesField("nonce", 0),
        X3BytesField("iid", 0),
        XByteField("lsb", 0),
    ]


def ip_add(addr, n):
    """`addr` + n as a dotted quad."""
    a = [int(x) for x in addr.split(".")]
    v = ((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]) + n
    return ".".join(str((v >> s) & 0xFF) for s in (24, 16, 8, 0))


def sizes(size):
    """[(wire frame size, pps weight)] for the `size` tunable: "64", another frame size
    (64-1518), or "imix"."""
    if size == "imix":
        return list(IMIX)
    try:
        n = int(size)
    except ValueError:
        raise ValueError('size must be "imix" or a frame size in bytes, not %r' % size)
    if not 64 <= n <= 1518:
        raise ValueError("size %d is outside 64-1518 bytes" % n)
    return [(n, 1)]


def parser(profile, description, count, size="64"):
    """The tunables every profile takes (TRex 3.x passes them as an argument list: `-t --size
    imix` in the console, keyword arguments to `STLProfile.load_py`)."""
    p = argparse.ArgumentParser(
        prog=profile, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--size", default=size, help='"64", another frame size or "imix"')
    p.add_argument("--count", type=int, default=count, help="destinations (EIDs)")
    return p


def check_direction(direction):
    if direction not in (0, 1):
        raise ValueError("direction must be 0 (pxtr eid0) or 1 (pxtr rloc0), not %r" % direction)


def _pad(frame_len, headers):
    """Payload bytes that bring `headers` (a Scapy packet) to `frame_len` bytes (no FCS)."""
    n = frame_len - len(headers)
    if n < 0:
        raise ValueError("%d-byte frames cannot hold these headers (%d bytes)" % (frame_len, len(headers)))
    return Raw(bytes(i & 0xFF for i in range(n)))


def _stream(name, pkt, instructions, pps):
    return STLStream(
        name=name,
        packet=STLPktBuilder(pkt=pkt, vm=STLScVmRaw(instructions)),
        mode=STLTXCont(pps=pps),
    )


def _random_addr(name, first, span, count, seed):
    """A field-engine variable taking `count` addresses of [first, first + span) in a repeatable
    random order."""
    count = max(1, min(count, span))
    return STLVmFlowVarRepeatableRandom(
        name=name,
        size=4,
        limit=count,
        seed=seed,
        min_value=first,
        max_value=ip_add(first, span - 1),
    )


def _hosts_var(name):
    first, n = LOCAL_HOSTS
    return STLVmFlowVar(name=name, size=4, op="inc", min_value=first, max_value=ip_add(first, n - 1))


def _sport_var(name):
    return STLVmFlowVar(name=name, size=2, op="inc", min_value=SPORT_MIN, max_value=65535)


def plain_streams(tag, side, src_mac, src, src_var, dst_var, size, weight):
    """Plain IPv4/UDP from `src` (varied by `src_var`) to the addresses of `dst_var`, sent
    into pxtr's port `side` (0 eid0, 1 rloc0)."""
    out = []
    for wire, w in sizes(size):
        headers = Ether(src=src_mac, dst=PXTR_MAC[side]) / IP(src=src, dst="0.0.0.0", ttl=TTL) / UDP(
            sport=SPORT_MIN, dport=DPORT, chksum=0
        )
        pkt = headers / _pad(wire - FCS, headers)
        vm = [
            src_var,
            dst_var,
            _sport_var("sport"),
            STLVmWrFlowVar(fv_name=src_var.name, pkt_offset="IP.src"),
            STLVmWrFlowVar(fv_name=dst_var.name, pkt_offset="IP.dst"),
            STLVmWrFlowVar(fv_name="sport", pkt_offset="UDP.sport"),
            STLVmFixIpv4(offset="IP"),
        ]
        out.append(_stream("%s-%d" % (tag, wire), pkt, vm, w * weight))
    return out


def itr_streams(size="64", count=100000, weight=1):
    """Local hosts -> `count` remote EIDs of the 8 remote sites, into eid0: pxtr (ITR) looks
    each up and encapsulates it to the site's RLOC, out of rloc0."""
    first, n16 = REMOTE_EIDS
    return plain_streams(
        "itr",
        0,
        TREX_MAC[0],
        LOCAL_HOSTS[0],
        _hosts_var("src"),
        _random_addr("dst", first, n16 << 16, count, seed=0x1234),
        size,
        weight,
    )


def gateway_pitr_streams(size="64", count=1000, weight=1):
    """A non-LISP branch (172.20.0.0/16) -> `count` cloud EIDs (10.2.0.0/16), through the
    enterprise gateway into eid0 (the gateway sends to pxtr's MAC, which pxtr gave it by
    proxy-ARP for the moved VMs): encapsulated to the cloud xTR, out of rloc0."""
    src = STLVmFlowVar(name="src", size=4, op="random", min_value=BRANCH_HOSTS, max_value=ip_add(BRANCH_HOSTS, 0xFFFF))
    return plain_streams(
        "branch",
        0,
        TREX_MAC[0],
        BRANCH_HOSTS,
        src,
        _random_addr("dst", CLOUD_EIDS, 1 << 16, count, seed=0x2345),
        size,
        weight,
    )


def underlay_pitr_streams(size="64", count=1000, weight=1):
    """Internet hosts (198.18.0.0/15) -> `count` cloud EIDs, routed by the underlay to the
    PxTR's rloc0 (pxtr announces the EID prefixes as a PITR): encapsulated to the cloud xTR,
    back out of rloc0."""
    src = STLVmFlowVar(name="src", size=4, op="random", min_value=INTERNET_HOSTS, max_value=ip_add(INTERNET_HOSTS, 0x1FFFF))
    return plain_streams(
        "internet",
        1,
        TREX_MAC[1],
        INTERNET_HOSTS,
        src,
        _random_addr("dst", CLOUD_EIDS, 1 << 16, count, seed=0x3456),
        size,
        weight,
    )


def etr_streams(size="64", count=100000, weight=1):
    """The remote sites' xTRs -> the local hosts, LISP-encapsulated to our RLOC, into rloc0:
    pxtr (ETR) decapsulates and delivers to the hosts, out of eid0. The inner sources are
    `count` remote EIDs; each packet's outer source is the RLOC of its inner source's site.
    LISP header: N (nonce) and I (instance-ID 0) bits, as an xTR sends data."""
    first_eid, sites = REMOTE_EIDS
    per_site = max(1, min(1 << 16, -(-count // sites)))
    out = []
    for wire, w in sizes(size):
        inner = IP(src=first_eid, dst=LOCAL_HOSTS[0], ttl=TTL) / UDP(sport=SPORT_MIN, dport=DPORT, chksum=0)
        outer = (
            Ether(src=TREX_MAC[1], dst=PXTR_MAC[1])
            / IP(src=REMOTE_RLOCS[0], dst=OUR_RLOC, flags="DF", ttl=TTL)
            / UDP(sport=SPORT_MIN, dport=LISP_DATA_PORT, chksum=0)
            / LispData(N=1, I=1, nonce=0x5A5A5A, iid=0)
        )
        inner_len = wire - FCS - 14
        pkt = outer / inner / _pad(inner_len, inner)
        vm = [
            # The remote site (0..7): the outer source's last byte and the inner source's
            # second byte.
            STLVmFlowVar(name="site", size=1, op="inc", min_value=0, max_value=sites - 1),
            # The host within the site's /16.
            STLVmFlowVarRepeatableRandom(name="host", size=2, limit=per_site, seed=0x4567, min_value=0, max_value=0xFFFF),
            _hosts_var("dst"),
            _sport_var("outer_sport"),
            STLVmWrFlowVar(fv_name="site", pkt_offset="IP.src", offset_fixup=3, add_val=1),
            STLVmWrFlowVar(fv_name="outer_sport", pkt_offset="UDP.sport"),
            STLVmWrFlowVar(fv_name="site", pkt_offset="IP:1.src", offset_fixup=1, add_val=64),
            STLVmWrFlowVar(fv_name="host", pkt_offset="IP:1.src", offset_fixup=2),
            STLVmWrFlowVar(fv_name="dst", pkt_offset="IP:1.dst"),
            STLVmFixIpv4(offset="IP"),
            STLVmFixIpv4(offset="IP:1"),
        ]
        out.append(_stream("etr-%d" % wire, pkt, vm, w * weight))
    return out
