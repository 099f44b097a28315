#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Idle cost: oomsentry and earlyoom side by side, watching an idle ComfyUI stand-in for the same 60 s.

The ComfyUI simulator (tests/sim/comfy_sim.py, idle: nothing queued) runs in a fresh memory cgroup. Both watchdogs
start, settle for SETTLE seconds, and are then measured over the same WINDOW seconds:

  oomsentry  `oomsentry run --dry-run --url SIM --restart none` (its defaults otherwise; --dry-run only because
             this runs on shared machines: an idle server gives it nothing to do either way)
  earlyoom   Debian's earlyoom with its defaults and --dryrun (it never signals anything)

Per daemon: CPU time (utime + stime clock ticks from /proc/PID/stat, and the scheduler's ns from
/proc/PID/task/*/schedstat), wake-ups (voluntary context switches of all threads), VmRSS at the end (and its
anonymous and file parts), VmLck (the size of the locked mappings: with MCL_ONFAULT only their touched pages are
resident, so VmLck is an upper bound, not what is held). Ratios are against earlyoom measured in the same window,
never against a stored figure.

What wakes oomsentry is counted too: the records it wrote in the window, by kind (every BPF event it handles is
one). By default it tracks every process whose name starts with "python" on the host (comm_prefixes), so on a
machine where other Python programs start, exit and grow, their events are part of its cost; earlyoom watches
none. --comm-prefixes nomatch leaves only the server's own tree (found by its port), which is what the cost of
watching one idle ComfyUI is.

usage: sudo bench/idle.py [--window 60] [--settle 15] [--comm-prefixes LIST]

The settling (15 s) outlasts the 10 s for which oomsentry keeps sampling after activity (its start is some):
the window measures it idle, not starting.
"""
import argparse
import collections
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "sim"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu(pid):
    """(clock ticks utime+stime, ns from schedstat, voluntary context switches) over all threads."""
    f = open("/proc/%d/stat" % pid).read()
    fields = f[f.rindex(")") + 2:].split()
    ticks = int(fields[11]) + int(fields[12])
    ns = vcs = 0
    for t in glob.glob("/proc/%d/task/*" % pid):
        try:
            ns += int(open(t + "/schedstat").read().split()[0])
            for line in open(t + "/status"):
                if line.startswith("voluntary_ctxt_switches:"):
                    vcs += int(line.split()[1])
        except OSError:
            pass
    return ticks, ns, vcs


def status_kib(pid, *keys):
    out = {}
    for line in open("/proc/%d/status" % pid):
        k = line.split(":")[0]
        if k in keys:
            out[k] = int(line.split()[1])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--window", type=float, default=60.0)
    ap.add_argument("--settle", type=float, default=15.0)
    ap.add_argument("--comm-prefixes", help="oomsentry's comm_prefixes (default: its own)")
    ap.add_argument("--binary", default=os.path.join(ROOT, "oomsentry"), help="the oomsentry to measure")
    ap.add_argument("--daemon-arg", action="append", default=[],
                    help="one more argument for oomsentry run (repeat), e.g. --daemon-arg=--ring-buffer-size=1M")
    ap.add_argument("--cgroup-prefix", default="oomsentry-bench-", help="the simulator's memory cgroup name begins so")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("idle.py: needs root (BPF, memory cgroups)", file=sys.stderr)
        return 2
    from memcg import MemoryCgroup
    # a benchmark stopped with SIGTERM still cleans up (its finally: the daemons, the cgroup)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))

    work = tempfile.mkdtemp(prefix="oomsentry-bench.")
    cg = MemoryCgroup(2 << 30, prefix=args.cgroup_prefix)
    procs = []
    try:
        port = free_port()
        sim = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "sim", "comfy_sim.py"), "--port",
                                str(port)], preexec_fn=cg.enter(), stdout=subprocess.DEVNULL)
        procs.append(sim)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        extra = (["--comm-prefixes", args.comm_prefixes] if args.comm_prefixes else []) + args.daemon_arg
        oom = subprocess.Popen([args.binary, "run", "--dry-run", "--url",
                                "http://127.0.0.1:%d" % port, "--restart", "none", "--journal=no", "--json", "--socket",
                                os.path.join(work, "sock"), "--incident-dir", os.path.join(work, "inc")] + extra,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        procs.append(oom)
        # its records, stamped on arrival: what it handled in the window
        records = []

        def read_records():
            for raw in oom.stdout:
                try:
                    kind = json.loads(raw).get("event", "?")
                except ValueError:
                    kind = "?"
                records.append((time.monotonic(), kind))
        threading.Thread(target=read_records, daemon=True).start()
        eo = subprocess.Popen(["earlyoom", "--dryrun"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(eo)
        time.sleep(args.settle)
        for p in (oom, eo):
            if p.poll() is not None:
                raise RuntimeError("%s exited early (%s)" % (p.args[0], p.returncode))
        tick = os.sysconf("SC_CLK_TCK")
        print("== idle cost beside earlyoom (bench/idle.py) ==")
        print("kernel %s, %d CPUs, load average %s at start; ComfyUI simulator idle in a memory cgroup; %.0f s "
              "window after %.0f s of settling; CLK_TCK %d; oomsentry comm_prefixes %s; %s %s" % (
                  os.uname().release, os.cpu_count(), " ".join(open("/proc/loadavg").read().split()[:3]),
                  args.window, args.settle, tick, args.comm_prefixes or "(default)", args.binary,
                  " ".join(args.daemon_arg)))
        before = {p.pid: cpu(p.pid) for p in (oom, eo)}
        t0 = time.monotonic()
        time.sleep(args.window)
        dt = time.monotonic() - t0
        after = {p.pid: cpu(p.pid) for p in (oom, eo)}
        rows = {}
        for name, p in (("oomsentry", oom), ("earlyoom", eo)):
            b, a = before[p.pid], after[p.pid]
            st = status_kib(p.pid, "VmRSS", "RssAnon", "RssFile", "VmLck", "VmHWM")
            rows[name] = (a[0] - b[0], (a[1] - b[1]) / 1e6, (a[2] - b[2]) / dt, st)
        print()
        print("%-10s %8s %10s %10s %12s %9s %9s %9s %9s" % ("daemon", "ticks", "CPU ms", "% CPU", "wakeups/s",
                                                          "VmRSS", "RssAnon", "RssFile", "VmLck"))
        for name, (ticks, ms, wps, st) in rows.items():
            print("%-10s %8d %10.1f %9.3f%% %12.1f %7.1f M %7.1f M %7.1f M %7.1f M" % (
                name, ticks, ms, 100 * ms / 1e3 / dt, wps, st.get("VmRSS", 0) / 1024, st.get("RssAnon", 0) / 1024,
                st.get("RssFile", 0) / 1024, st.get("VmLck", 0) / 1024))
        o, e = rows["oomsentry"], rows["earlyoom"]
        print("oomsentry / earlyoom: CPU %.2fx (scheduler ns), wake-ups %.2fx, VmRSS %.2fx (same %.0f s window)" % (
            o[1] / e[1] if e[1] else float("inf"), o[2] / e[2] if e[2] else float("inf"),
            o[3]["VmRSS"] / e[3]["VmRSS"], dt))
        kinds = collections.Counter(k for t, k in list(records) if t0 <= t <= t0 + dt)
        print("oomsentry records in the window (each BPF event handled is one): %d%s" % (
            sum(kinds.values()), (" (" + ", ".join("%s %d" % kv for kv in kinds.most_common()) + ")") if kinds else ""))
        return 0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        cg.destroy()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    sys.exit(main())
