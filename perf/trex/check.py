"""Offline checks of the TRex profiles (run by perf/trex/check.sh, which makes the venv with
TRex's client library, PyPI lbr-trex-client):

- every profile loads as TRex loads it (`STLProfile.load_py`, direction and port_id 0 and 1),
  with no tunables and with --size imix, and gives streams;
- each stream survives TRex's JSON round trip (`to_json`, `STLStream.from_json`, the form the
  client sends the server);
- the packets each stream sends are written to pcaps (OUT/<profile>-d<direction>-<size>.pcap)
  for tests/trex_profiles.rs, which feeds them through pxtr's pipeline: per stream, VARIANTS
  frames from the compiled field-engine program applied to the base packet (every variable at
  its minimum, at its maximum, then stepping: `inc` variables as TRex steps them, random ones
  from a seeded generator within their range, not TRex's sequence);
- the MACs agree between trex_cfg.yaml, pxtr_lab.py and pxtr-under-trex.toml;
- ndr.py's rate search finds known NDR/PDR points of a simulated device, and ndr.py fails
  clearly without a TRex install.

Usage: python check.py OUT_DIR
"""

import base64
import contextlib
import io
import os
import random
import re
import struct
import subprocess
import sys
import tomllib
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lbr_trex_client  # noqa: E402,F401  (puts TRex's client library on the path)
from trex.stl.api import STLProfile, STLStream  # noqa: E402

import pxtr_lab  # noqa: E402

PROFILES = ("eid_to_rloc", "decap", "non_lisp_site", "mix")
SIZES = ("64", "imix")
VARIANTS = 16


def fail(msg):
    print("perf/trex/check.py: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def ipv4_checksum(header):
    s = 0
    for i in range(0, len(header), 2):
        s += (header[i] << 8) | header[i + 1]
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def run_vm(base, instructions, k, rng):
    """Frame `k` of a stream: the field-engine program applied to the base packet."""
    pkt = bytearray(base)
    values, sizes = {}, {}
    for ins in instructions:
        t = ins["type"]
        if t in ("flow_var", "flow_var_rand_limit"):
            lo, hi, name = ins["min_value"], ins["max_value"], ins["name"]
            sizes[name] = ins["size"]
            if k == 0:
                v = lo
            elif k == 1:
                v = hi
            elif t == "flow_var" and ins["op"] in ("inc", "dec"):
                span = hi - lo + 1
                off = (ins["init_value"] - lo) + (k - 2) * ins["step"] * (1 if ins["op"] == "inc" else -1)
                v = lo + off % span
            elif t == "flow_var_rand_limit" or ins["op"] == "random":
                v = rng.randint(lo, hi)
            else:
                fail("field-engine op %r not emulated" % ins["op"])
            values[name] = v
        elif t == "write_flow_var":
            size = sizes[ins["name"]]
            v = (values[ins["name"]] + ins["add_value"]) % (1 << (8 * size))
            o = ins["pkt_offset"]
            if o + size > len(pkt):
                fail("write past the packet's end at %d" % o)
            pkt[o : o + size] = v.to_bytes(size, "big" if ins["is_big_endian"] else "little")
        elif t == "fix_checksum_ipv4":
            o = ins["pkt_offset"]
            ihl = (pkt[o] & 0x0F) * 4
            pkt[o + 10 : o + 12] = b"\0\0"
            pkt[o + 10 : o + 12] = struct.pack(">H", ipv4_checksum(pkt[o : o + ihl]))
        else:
            fail("field-engine instruction %r not emulated" % t)
    return bytes(pkt)


def write_pcap(path, frames):
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", i, 0, len(fr), len(fr)))
            f.write(fr)
    os.replace(path + ".tmp", path)


def check_profiles(out):
    os.makedirs(out, exist_ok=True)
    written = 0
    for name in PROFILES:
        path = os.path.join(HERE, name + ".py")
        for d in (0, 1):
            # As the console loads it with no tunables.
            plain = STLProfile.load_py(path, direction=d, port_id=d)
            if plain is None or not plain.get_streams():
                fail("%s direction %d: no streams with default tunables" % (name, d))
            for size in SIZES:
                profile = STLProfile.load_py(path, direction=d, port_id=d, size=size)
                if profile is None:
                    fail("%s direction %d --size %s: the profile rejected its tunables" % (name, d, size))
                streams = profile.get_streams()
                want = len(pxtr_lab.sizes(size))
                if len(streams) % want:
                    fail("%s --size %s: %d streams, not a multiple of %d" % (name, size, len(streams), want))
                frames = []
                rng = random.Random(zlib.crc32(("%s-%d-%s" % (name, d, size)).encode()))
                for s in streams:
                    j = s.to_json()
                    back = STLStream.from_json(j).to_json()
                    if back != j:
                        fail("%s stream %s: JSON round trip changed it" % (name, s.get_name()))
                    base = base64.b64decode(j["packet"]["binary"])
                    for k in range(VARIANTS):
                        frames.append(run_vm(base, j["vm"]["instructions"], k, rng))
                prof_json = profile.to_json()
                if STLProfile.from_json(prof_json).to_json() != prof_json:
                    fail("%s: profile JSON round trip changed it" % name)
                pcap = os.path.join(out, "%s-d%d-%s.pcap" % (name, d, size))
                write_pcap(pcap, frames)
                written += 1
                print("  %-34s %2d stream(s), %3d frames" % (os.path.basename(pcap), len(streams), len(frames)))
    return written


def check_macs():
    cfg = open(os.path.join(HERE, "trex_cfg.yaml")).read()
    dest = re.findall(r'dest_mac:\s*"([0-9a-f:]+)"', cfg)
    src = re.findall(r'src_mac:\s*"([0-9a-f:]+)"', cfg)
    if tuple(dest) != pxtr_lab.PXTR_MAC or tuple(src) != pxtr_lab.TREX_MAC:
        fail("trex_cfg.yaml MACs %s / %s differ from pxtr_lab.py's %s / %s" % (dest, src, pxtr_lab.PXTR_MAC, pxtr_lab.TREX_MAC))
    with open(os.path.join(HERE, "pxtr-under-trex.toml"), "rb") as f:
        toml = tomllib.load(f)
    for i, port in enumerate(toml["ports"]):
        for n in port.get("neighbors", []):
            if n["mac"] != pxtr_lab.TREX_MAC[i]:
                fail("pxtr-under-trex.toml port %s neighbour %s has MAC %s, not TRex port %d's %s" % (port["name"], n["ip"], n["mac"], i, pxtr_lab.TREX_MAC[i]))


def check_ndr():
    import ndr

    # A simulated device: no loss up to 37.3% of line rate, 0.3% loss up to 41%, then 5%.
    def device(rate):
        loss = 0.0 if rate <= 37.3 else 0.003 if rate <= 41.0 else 0.05
        return loss, {"rate": rate}

    for threshold, expect in ((0.0, 37.3), (0.005, 41.0)):
        rate, _, trials = ndr.search(device, 100.0, threshold, 0.5)
        if not expect - 0.5 <= rate <= expect:
            fail("ndr.search with threshold %s found %s, expected within 0.5 below %s" % (threshold, rate, expect))
        if trials > 10:
            fail("ndr.search took %d trials" % trials)
    rate, _, _ = ndr.search(lambda r: (1.0, {}), 100.0, 0.0, 0.5)
    if rate != 0.0:
        fail("ndr.search passed a device that drops everything at %s" % rate)
    rate, _, trials = ndr.search(lambda r: (0.0, {}), 100.0, 0.0, 0.5)
    if rate != 100.0 or trials != 1:
        fail("ndr.search: a device without loss should pass at 100%% in one trial, got %s in %d" % (rate, trials))

    # The whole measurement against a simulated TRex client and device: 10 Gb/s ports, the
    # device forwards 30% of line rate without loss, up to 33% losing 0.2%.
    import datetime
    from trex.stl import api

    class FakeClient:
        def __init__(self):
            self.streams, self.started = {}, None

        def get_all_ports(self):
            return [0, 1]

        def reset(self, ports=None):
            self.streams = {}

        def add_streams(self, streams, ports):
            for p in ports:
                self.streams.setdefault(p, []).extend(streams)

        def clear_stats(self):
            pass

        def start(self, ports, mult, duration):
            if set(ports) - set(self.streams):
                fail("ndr.py started port(s) without streams")
            self.started = (ports, float(mult.rstrip("%")), duration)

        def wait_on_traffic(self, ports, rx_delay_ms):
            pass

        def get_stats(self):
            ports, rate, duration = self.started
            per_port = 14.88e6 * rate / 100 * duration
            sent = int(per_port * len(ports))
            loss = 0.0 if rate <= 30 else 0.002 if rate <= 33 else 0.1
            st = {p: {"opackets": int(per_port) if p in ports else 0, "ipackets": 0, "tx_bps_L1": 1e8 * rate if p in ports else 0} for p in (0, 1)}
            st[1 - ports[0]]["ipackets"] = int(sent * (1 - loss))
            return st

    args = ndr.parse_args(["--profiles", "eid_to_rloc,mix", "--sizes", "64", "--duration", "1"])
    with contextlib.redirect_stdout(io.StringIO()):
        rows = ndr.measure(FakeClient(), api, args)
    for r in rows:
        if not (29.5 <= r["ndr"] <= 30 and 32.5 <= r["pdr"] <= 33):
            fail("ndr.measure on the simulated device: %s" % r)
    md = ndr.report(args, "v-test", rows, datetime.datetime.now(datetime.timezone.utc))
    if "| eid_to_rloc | 64 | 0 |" not in md or "| mix | 64 | 0,1 |" not in md:
        fail("ndr.report:\n" + md)
    if os.environ.get("PXTR_SHOW_NDR_REPORT"):
        print(md)

    script = os.path.join(HERE, "ndr.py")
    env = {k: v for k, v in os.environ.items() if k != "TREX_DIR"}
    r = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True)
    if r.returncode != 2 or "TREX_DIR" not in r.stderr:
        fail("ndr.py without TREX_DIR: exit %d, stderr %r" % (r.returncode, r.stderr))
    env["TREX_DIR"] = "/nonexistent/trex"
    r = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True)
    if r.returncode != 2 or "/nonexistent/trex" not in r.stderr:
        fail("ndr.py with a missing TREX_DIR: exit %d, stderr %r" % (r.returncode, r.stderr))
    r = subprocess.run([sys.executable, script, "--profiles", "nope"], env=env, capture_output=True, text=True)
    if r.returncode != 2 or "nope" not in r.stderr:
        fail("ndr.py --profiles nope: exit %d, stderr %r" % (r.returncode, r.stderr))


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    n = check_profiles(sys.argv[1])
    check_macs()
    check_ndr()
    print("perf/trex/check.py: %d profile pcaps in %s; MACs agree; ndr search and errors OK" % (n, sys.argv[1]))


if __name__ == "__main__":
    main()
