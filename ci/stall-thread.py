#!/usr/bin/env python3
"""Stops one thread of a process for a while, leaving its other threads running.

    ci/stall-thread.py PID NAME SECONDS

Stops the thread of process PID whose name (/proc/PID/task/*/comm) is NAME, for SECONDS, with
ptrace (PTRACE_SEIZE + PTRACE_INTERRUPT stop only the thread attached to; SIGSTOP would stop the
whole process), then lets it go on. The lab uses it to stall pxtr's control core while its
workers keep forwarding. Needs root (or CAP_SYS_PTRACE).
"""
import ctypes
import os
import sys
import time

PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000


def thread(pid, name):
    tasks = f"/proc/{pid}/task"
    names = {}
    for tid in os.listdir(tasks):
        with open(f"{tasks}/{tid}/comm") as f:
            names[int(tid)] = f.read().strip()
    # The lowest id of that name: for the process's own name, its main thread.
    found = sorted(t for t, n in names.items() if n == name)
    if not found:
        sys.exit(f"stall-thread: no thread named {name!r} in process {pid} (has: {', '.join(sorted(set(names.values())))})")
    return found[0]


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    pid, name, secs = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    tid = thread(pid, name)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]

    def call(req, what):
        if libc.ptrace(req, tid, None, None) != 0:
            e = ctypes.get_errno()
            sys.exit(f"stall-thread: {what} thread {tid}: {os.strerror(e)}")

    call(PTRACE_SEIZE, "attach to")
    call(PTRACE_INTERRUPT, "stop")
    os.waitpid(tid, WALL)
    t0 = time.monotonic()
    time.sleep(secs)
    call(PTRACE_DETACH, "release")
    print(f"stall-thread: thread {tid} ({name}) of {pid} stopped for {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main()
