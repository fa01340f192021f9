#!/usr/bin/env python3
"""NDR/PDR search for pxtr with TRex (stateless), one row per profile and frame size.

    TREX_DIR=/opt/trex/v3.04 perf/trex/ndr.py [--profiles eid_to_rloc,decap,non_lisp_site,mix]
        [--sizes 64,imix] [--duration 10] [--pdr-loss 0.5] [--precision 0.5] [--server HOST]
        [--cfg perf/trex/trex_cfg.yaml] [--out FILE]

TREX_DIR is the TRex install (the folder with t-rex-64 and automation/). If no TRex server
answers on --server (default localhost), the script starts one there (`t-rex-64 -i --cfg
CFG`, as root) and stops it at the end. pxtr must run with perf/trex/pxtr-under-trex.toml on
the machine cabled to TRex as trex_cfg.yaml says.

For each profile and size it searches the highest rate (percent of line rate on each sending
port) at which the packets lost stay within the threshold: NDR with none lost, PDR with at
most --pdr-loss percent. A trial sends for --duration seconds, waits a second for the last
packets, and compares the packets TRex sent with the packets it received on all its ports
(pxtr sends everything back to TRex: encapsulated out of rloc0, decapsulated out of eid0).
Binary search: start at 100%, then halve the interval between the highest passing and the
lowest failing rate until it is narrower than --precision. It writes the results in markdown
to --out (default perf/results/trex-ndr-<date>.md).
"""

import argparse
import datetime
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# Which TRex ports each profile sends from (port 0 is cabled to pxtr's eid0, port 1 to rloc0).
PORTS = {
    "eid_to_rloc": [0],
    "decap": [1],
    "non_lisp_site": [0, 1],
    "mix": [0, 1],
}


def die(msg):
    print("ndr.py: " + msg, file=sys.stderr)
    sys.exit(2)


def search(trial, max_rate, loss_threshold, precision):
    """The highest rate in (0, max_rate] at which `trial(rate)` loses at most `loss_threshold`
    (a fraction), to within `precision`; 0.0 if none. `trial` returns (loss fraction, stats).
    Returns (rate, that trial's stats, number of trials)."""
    trials = 1
    loss, stats = trial(max_rate)
    if loss <= loss_threshold:
        return max_rate, stats, trials
    lo, hi, best = 0.0, max_rate, None
    while hi - lo > precision:
        mid = (lo + hi) / 2
        trials += 1
        loss, st = trial(mid)
        if loss <= loss_threshold:
            lo, best = mid, st
        else:
            hi = mid
    return lo, best, trials


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profiles", default=",".join(PORTS), help="comma-separated, from: " + ", ".join(PORTS))
    p.add_argument("--sizes", default="64,imix", help='comma-separated frame sizes ("64", "imix", ...)')
    p.add_argument("--duration", type=float, default=10.0, help="seconds per trial")
    p.add_argument("--pdr-loss", type=float, default=0.5, help="PDR loss threshold, percent")
    p.add_argument("--precision", type=float, default=0.5, help="search precision, percent of line rate")
    p.add_argument("--count", type=int, default=None, help="the profiles' --count tunable")
    p.add_argument("--server", default="localhost", help="TRex server")
    p.add_argument("--cfg", default=os.path.join(HERE, "trex_cfg.yaml"), help="TRex port config (to start a server)")
    p.add_argument("--out", default=None, help="markdown output (default perf/results/trex-ndr-<date>.md)")
    a = p.parse_args(argv)
    a.argv = list(argv)
    a.profiles = [x for x in a.profiles.split(",") if x]
    for x in a.profiles:
        if x not in PORTS:
            p.error("unknown profile %r (known: %s)" % (x, ", ".join(PORTS)))
    a.sizes = [x for x in a.sizes.split(",") if x]
    if a.duration <= 0 or not 0 <= a.pdr_loss < 100 or a.precision <= 0:
        p.error("--duration and --precision must be positive, --pdr-loss within 0-100")
    return a


def trex_dir():
    d = os.environ.get("TREX_DIR")
    if not d:
        die("set TREX_DIR to the TRex install (the folder with t-rex-64 and automation/), e.g. TREX_DIR=/opt/trex/v3.04")
    lib = os.path.join(d, "automation", "trex_control_plane", "interactive")
    if not os.path.isfile(os.path.join(d, "t-rex-64")) or not os.path.isdir(lib):
        die("TREX_DIR=%s is not a TRex install: no t-rex-64 or automation/trex_control_plane/interactive in it" % d)
    return d, lib


def connect(STLClient, server):
    c = STLClient(server=server)
    try:
        c.connect()
        return c
    except Exception:
        return None


def start_server(d, cfg, STLClient):
    log = open(os.path.join(REPO, "target", "trex-server.log"), "ab") if os.path.isdir(os.path.join(REPO, "target")) else subprocess.DEVNULL
    print("ndr.py: starting the TRex server: %s/t-rex-64 -i --cfg %s" % (d, cfg))
    proc = subprocess.Popen(["./t-rex-64", "-i", "--cfg", os.path.abspath(cfg)], cwd=d, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            die("the TRex server exited with status %d (log: target/trex-server.log)" % proc.returncode)
        c = connect(STLClient, "localhost")
        if c:
            return c, proc
        time.sleep(2)
    proc.terminate()
    die("the TRex server did not answer within 90 s")


def make_trial(c, api, profile, size, ports, duration, count):
    tunables = {"size": size}
    if count is not None:
        tunables["count"] = count
    streams = {}
    for port in ports:
        prof = api.STLProfile.load_py(os.path.join(HERE, profile + ".py"), direction=port % 2, port_id=port, **tunables)
        if prof is None:
            die("%s rejected the tunables %s" % (profile, tunables))
        streams[port] = prof.get_streams()
    all_ports = sorted(c.get_all_ports())

    def trial(rate):
        c.reset(ports=all_ports)
        for port, s in streams.items():
            c.add_streams(s, ports=[port])
        c.clear_stats()
        c.start(ports=ports, mult="%.3f%%" % rate, duration=duration)
        c.wait_on_traffic(ports=ports, rx_delay_ms=1000)
        st = c.get_stats()
        tx = sum(st[p]["opackets"] for p in ports)
        rx = sum(st[p]["ipackets"] for p in all_ports)
        tx_bps_l1 = sum(st[p]["tx_bps_L1"] for p in ports)
        loss = 1.0 - rx / tx if tx else 1.0
        stats = {"tx": tx, "rx": rx, "mpps": tx / duration / 1e6, "gbps_l1": tx_bps_l1 / 1e9, "loss": max(loss, 0.0)}
        print("  %s %s at %.2f%%: sent %d, received %d, loss %.4f%%" % (profile, size, rate, tx, rx, 100 * stats["loss"]))
        return max(loss, 0.0), stats

    return trial


def measure(c, api, args):
    """NDR and PDR of each profile and size on the connected client `c`: one row each."""
    rows = []
    for profile in args.profiles:
        for size in args.sizes:
            ports = PORTS[profile]
            trial = make_trial(c, api, profile, size, ports, args.duration, args.count)
            print("%s, %s: NDR" % (profile, size))
            ndr, ndr_s, t1 = search(trial, 100.0, 0.0, args.precision)
            print("%s, %s: PDR (%g%%)" % (profile, size, args.pdr_loss))
            pdr, pdr_s, t2 = search(trial, 100.0, args.pdr_loss / 100, args.precision)
            rows.append({"profile": profile, "size": size, "ports": ports, "ndr": ndr, "ndr_s": ndr_s or {}, "pdr": pdr, "pdr_s": pdr_s or {}, "trials": t1 + t2})
    return rows


def git_commit():
    try:
        return subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return "unknown"


def report(args, version, rows, started, ports_info=()):
    lines = [
        "# Data plane under TRex: NDR / PDR",
        "",
        "%s, `perf/trex/ndr.py` (commit %s), TRex %s, pxtr with `perf/trex/pxtr-under-trex.toml`." % (started.strftime("%Y-%m-%d %H:%M UTC"), git_commit(), version),
        "",
        "Trials of %g s; NDR: no packet lost; PDR: at most %g%% lost; binary search to %g%% of line rate. Rates are what TRex sent (all sending ports together); Gbps counts L1 (preamble, IFG, FCS)." % (args.duration, args.pdr_loss, args.precision),
        "",
        "| profile | size | TRex ports | NDR % line | NDR Mpps | NDR Gbps | PDR % line | PDR Mpps | PDR Gbps | trials |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            "| %s | %s | %s | %.1f | %.2f | %.2f | %.1f | %.2f | %.2f | %d |"
            % (r["profile"], r["size"], ",".join(map(str, r["ports"])), r["ndr"], r["ndr_s"].get("mpps", 0), r["ndr_s"].get("gbps_l1", 0), r["pdr"], r["pdr_s"].get("mpps", 0), r["pdr_s"].get("gbps_l1", 0), r["trials"])
        )
    lines += ["", "TRex ports (port 0 cabled to pxtr's eid0, port 1 to rloc0, `perf/trex/trex_cfg.yaml`):", ""]
    for i, info in enumerate(ports_info):
        lines.append("- port %d: %s, %s, %g Gb/s" % (i, info.get("driver", "?"), info.get("description", "?"), info.get("speed", 0)))
    lines += ["", "Command:", "", "```", " ".join(["perf/trex/ndr.py"] + args.argv), "```", ""]
    return "\n".join(lines)


def main():
    args = parse_args(sys.argv[1:])
    d, lib = trex_dir()
    sys.path.insert(0, lib)
    import trex.stl.api as api  # noqa: E402  (TRex's client library, from TREX_DIR)

    started = datetime.datetime.now(datetime.timezone.utc)
    proc = None
    c = connect(api.STLClient, args.server)
    if c is None:
        if args.server not in ("localhost", "127.0.0.1"):
            die("no TRex server answers on %s" % args.server)
        c, proc = start_server(d, args.cfg, api.STLClient)
    try:
        version = c.get_server_version().get("version", "?")
        ports_info = c.get_port_info()
        c.acquire(force=True)
        rows = measure(c, api, args)
        c.reset()
    finally:
        c.disconnect()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    md = report(args, version, rows, started, ports_info)
    out = args.out or os.path.join(REPO, "perf", "results", "trex-ndr-%s.md" % started.strftime("%Y-%m-%d"))
    with open(out, "w") as f:
        f.write(md)
    print(md)
    print("ndr.py: written to %s" % out)


if __name__ == "__main__":
    main()
