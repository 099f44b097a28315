#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Burst room: how many events the BPF ring buffer holds while the daemon does not read it.

A burst of events that comes while the daemon is off the CPU (a busy machine, a long handler) waits in the ring
buffer; what finds no room is dropped by the kernel (lost RSS steps, and for exec/fork/exit a resync of the process
table from /proc). The room is the ring's size over the length of a record, which depends on the kind of event.

For each ring size: `oomsentry observe` tracks only a generator of ours (its name starts with a prefix no other
process has), with a 1 MiB rss_step so that its memory makes many RSS events. The daemon is stopped (SIGSTOP), the
generator maps, touches and unmaps 256 MiB CYCLES times (RSS steps up and down, mmap and munmap events) and exits,
and the daemon is let go (SIGCONT). Everything it then reads was in the ring when the burst ended: its events
counter (the Prometheus endpoint, oomsentry_events_total by type) grows by the room, and its drops counter
(oomsentry_bpf_drops_total) by what did not fit. A run counts only when something was dropped (the ring was full).

usage: sudo bench/burst.py [--binary PATH] [--ring-sizes 512K,1M] [--cycles 32]
Needs root (BPF). Nothing is compared with a stored figure.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = "osburst"
GENERATOR = r"""
import mmap, sys
size = int(sys.argv[1]) << 20
sys.stdin.readline()
for _ in range(int(sys.argv[2])):
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    for off in range(0, size, mmap.PAGESIZE):
        m[off] = 1
    m.close()
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def scrape(port):
    """(events read by type, BPF drops) from the daemon's metrics."""
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    events, drops = {}, None
    for line in text.splitlines():
        if line.startswith("oomsentry_events_total{"):
            kind = line.split('type="')[1].split('"')[0]
            events[kind] = int(float(line.split()[-1]))
        elif line.startswith("oomsentry_bpf_drops_total"):
            drops = int(float(line.split()[-1]))
    return events, drops


def measure(binary, ring, cycles, mib, work):
    port = free_port()
    gen = os.path.join(work, PREFIX + "-gen")
    if not os.path.exists(gen):
        os.symlink(sys.executable, gen)
    d = subprocess.Popen([binary, "observe", "--json", "--journal=no", "--comm-prefixes", PREFIX,
                          "--rss-step", "1M", "--ring-buffer-size", ring, "--metrics-listen", "127.0.0.1:%d" % port,
                          "--socket", os.path.join(work, "sock"), "--incident-dir", os.path.join(work, "incidents")],
                         stdout=subprocess.PIPE, stderr=open(os.path.join(work, "daemon.stderr"), "w"))
    lines = []
    reader = threading.Thread(target=lambda: [lines.append(l) for l in d.stdout], daemon=True)
    reader.start()
    g = None
    try:
        for _ in range(200):
            try:
                scrape(port)
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("no metrics: %s" % open(os.path.join(work, "daemon.stderr")).read())
        g = subprocess.Popen([gen, "-c", GENERATOR, str(mib), str(cycles)], stdin=subprocess.PIPE)
        # tracked from its exec on: wait until the daemon has read that event
        for _ in range(200):
            if any(b'"exec"' in l and (b'"pid":%d,' % g.pid) in l for l in list(lines)):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("the daemon never saw the generator's exec")
        ev0, drops0 = scrape(port)
        d.send_signal(signal.SIGSTOP)
        try:
            g.stdin.write(b"go\n")
            g.stdin.close()
            g.wait(120)
            # the exit's event is in (or dropped from) the ring once the generator is reaped
        finally:
            d.send_signal(signal.SIGCONT)
        # read until the counter stands still: everything the ring held has been handled
        last, still = None, 0
        while still < 3:
            time.sleep(0.2)
            ev, drops = scrape(port)
            n = sum(ev.values())
            still = still + 1 if n == last else 0
            last = n
        got = {k: ev.get(k, 0) - ev0.get(k, 0) for k in ev}
        return {k: v for k, v in got.items() if v}, drops - drops0
    finally:
        if g and g.poll() is None:
            g.kill()
            g.wait()
        d.terminate()
        d.wait(10)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.path.join(ROOT, "oomsentry"))
    ap.add_argument("--ring-sizes", default="512K,1M")
    ap.add_argument("--cycles", type=int, default=32, help="256 MiB mapped, touched and unmapped this many times")
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("burst.py: needs root (BPF)", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="oomsentry-burst.")
    print("== burst room (bench/burst.py) ==")
    print("binary %s; kernel %s, load average %s; rss_step 1M, %d x %d MiB mapped, touched, unmapped while the "
          "daemon is stopped" % (args.binary, os.uname().release, " ".join(open("/proc/loadavg").read().split()[:3]),
                                 args.cycles, args.mib))
    try:
        for ring in args.ring_sizes.split(","):
            for _ in range(args.repeat):
                got, dropped = measure(args.binary, ring, args.cycles, args.mib, work)
                room = sum(got.values())
                print("ring %-5s events read after the stop %6d (%s), dropped %6d%s" % (
                    ring, room, ", ".join("%s %d" % kv for kv in sorted(got.items())), dropped,
                    "" if dropped else "  (not full: the burst was smaller than the ring, not a measure)"))
    finally:
        subprocess.run(["rm", "-rf", work])
    return 0


if __name__ == "__main__":
    sys.exit(main())
