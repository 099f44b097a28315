#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Reaction latency: how long from the RSS event that crosses the line to the action, beside earlyoom.

A stub ComfyUI server (this file with --stub: the ComfyUI routes oomsentry uses, an idle queue) lives in a fresh
memory cgroup; on request its child, the grower (this file with --grower, in the server's process tree and cgroup),
grows at a steady rate. The growth is a process of its own so that nothing holds the stub's GIL when an action
arrives: with a growing thread in the stub, the stub stamped a /free 5-45 ms after oomsentry had sent it (its record
came before the stamp), which was most of the tail of the runs of 2026-11-30. For every run:

  oomsentry  `oomsentry run` with its defaults (a fresh daemon per run, so that no run inherits another's
             cooldowns or verifications). The reaction is the time from the RSS event that crosses the line (the
             first rss record of the grower whose step puts the cgroup at or above act_usage_fraction of its limit:
             working set once the grower has started (usage less inactive file cache, as oomsentry measures) + the
             grower's RSS growth since and its page tables; its kernel timestamp, EVENT_MONOTONIC_NS) to the moment the
             stub received the action (POST /free or /interrupt: the kernel's receive timestamp of the request on the
             stub's socket, SO_TIMESTAMPNS, which over loopback is the moment oomsentry's send() ran; or a signal),
             both CLOCK_MONOTONIC. When the stub's handler thread got to the request is printed beside it: on a busy
             machine a Python thread waits for a CPU, 7-93 ms in 7 of 50 runs on 2026-12-01 at load average 6. A negative
             figure would be an action taken before the line, on a forecast. The stub then lets go of what it
             grew, like ComfyUI's /free when idle.
  earlyoom   Debian's earlyoom in --dryrun mode (it never signals anything; it only prints what it would do) with
             -M set so that its line lies where oomsentry's lies: the machine's MemAvailable at the start of the run
             minus the growth that takes the cgroup to act_usage_fraction of its limit. Its reaction is the time
             from the moment MemAvailable really fell to its line (/proc/meminfo sampled every 0.5 ms while the
             stub grows; earlyoom reads the machine, and other processes move it too) to the moment earlyoom
             printed "sending SIGTERM to" (stamped when the line arrives through a pipe).

The two take turns, RUNS of each (a fresh oomsentry per run: no run inherits another's cooldowns or
verifications, and none watches earlyoom's runs); p50/p90/p99/max are printed. The stub grows to 24 MiB below the limit at most: an RSS event comes every rss_step
(64 MiB), so the event that oomsentry acts on lies up to one step past the line.
Needs root (BPF, memory cgroups). Nothing is compared with a stored figure.

usage: sudo bench/reaction.py [--runs 50] [--rate-mib 1024] [--limit-mib 1024] [--keep DIR]
"""
import argparse
import collections
import json
import mmap
import os
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "sim"))
MIB = 1 << 20


# ---------------------------------------------------------------------------------------------------------------
# the stub server (runs in the memory cgroup)
# ---------------------------------------------------------------------------------------------------------------

def grower_main(rate_bytes, max_bytes):
    """The stub's child that grows: maps max_bytes, says "ready", and on "go TO" touches TO bytes of it at rate_bytes
    per second; it exits (and its memory goes) when its stdin closes. A process of its own, not a thread of the
    stub: a Python thread that touches pages holds the GIL, and the stub's HTTP thread then stamped an arriving
    action only when it got the GIL back (up to 5 ms per switch, several switches per request: 5-45 ms late in
    the runs of 2026-12-01)."""
    region = mmap.mmap(-1, max_bytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    os.write(1, b"ready\n")
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(0, 64)
        if not chunk:
            return 0
        line += chunk
    to_bytes = min(max_bytes, int(line.split()[1]))
    t0 = time.monotonic_ns()
    done = 0
    while done < to_bytes:
        want = min(to_bytes, int((time.monotonic_ns() - t0) * rate_bytes / 1e9))
        while done < want:
            region[done] = 1
            done += mmap.PAGESIZE
        if select.select([0], [], [], 0.0005)[0]:
            return 0
    while os.read(0, 64):
        pass
    return 0


class Stub:
    def __init__(self):
        self.lock = threading.Lock()
        self.actions = []          # [(monotonic_ns, what)]
        self.grower = None

    def record(self, what):
        with self.lock:
            self.actions.append((time.monotonic_ns(), what))

    def release(self):
        g, self.grower = self.grower, None
        if g:
            g.stdin.close()
            g.wait()

    def spawn(self, rate_bytes, max_bytes):
        self.release()
        g = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--grower", str(rate_bytes), str(max_bytes)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if g.stdout.readline() != b"ready\n":
            raise RuntimeError("the grower did not start")
        self.grower = g
        return g.pid

    def go(self, to_bytes):
        self.grower.stdin.write(b"go %d\n" % to_bytes)
        self.grower.stdin.flush()


STUB = Stub()


# SO_TIMESTAMPNS (asm-generic/socket.h; Python names it from 3.x on some builds only)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def kernel_rx_ns(sock):
    """CLOCK_MONOTONIC of the moment the kernel received the next request on sock (the head of its receive queue,
    peeked, not read), or None. Over loopback that is the moment the sender's send() ran: what the stub's threads do
    and when they get a CPU on a busy machine no longer counts."""
    try:
        _, anc, _, _ = sock.recvmsg(1, socket.CMSG_SPACE(16), socket.MSG_PEEK)
    except OSError:
        return None
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            # the timestamp is CLOCK_REALTIME: the offset to CLOCK_MONOTONIC read now
            offset = time.clock_gettime_ns(time.CLOCK_REALTIME) - time.monotonic_ns()
            return sec * 1000000000 + nsec - offset
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        self.request.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        super().setup()

    def handle_one_request(self):
        # before the request line is read: a keep-alive connection waits here for the next request
        self.rx_ns = kernel_rx_ns(self.connection)
        super().handle_one_request()

    def log_message(self, *a):
        pass

    def reply(self, obj, code=200):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return {}

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/system_stats":
            self.reply({"system": {"os": "posix", "ram_total": 0, "ram_free": 0, "comfyui_version": "stub",
                                   "python_version": sys.version, "pytorch_version": "none"}, "devices": []})
        elif path == "/queue":
            self.reply({"queue_running": [], "queue_pending": []})
        elif path.startswith("/history"):
            self.reply({})
        elif path == "/bench/state":
            with STUB.lock:
                self.reply({"actions": STUB.actions})
        else:
            self.reply({}, 404)

    def do_POST(self):
        # stamped before the body is read: the moment the action arrived
        t = time.monotonic_ns()
        rx = self.rx_ns if self.rx_ns is not None and self.rx_ns <= t else None
        path = self.path.split("?")[0]
        data = self.body()
        if path in ("/free", "/interrupt"):
            with STUB.lock:
                # [received by the kernel, stamped by the stub's thread, what]
                STUB.actions.append((rx if rx is not None else t, path[1:], t))
            if data.get("release", True):
                STUB.release()
            self.reply({})
        elif path == "/bench/spawn":
            self.reply({"pid": STUB.spawn(int(data["rate"]), int(data["max"]))})
        elif path == "/bench/go":
            STUB.go(int(data["to"]))
            self.reply({})
        elif path == "/bench/release":
            STUB.release()
            with STUB.lock:
                STUB.actions = []
            self.reply({})
        else:
            self.reply({}, 404)


def stub_main(port_file):
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, f: STUB.record("signal %d" % s))
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # on the listener too: every packet is timestamped from now on, also one queued before its accept
    srv.socket.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    srv.serve_forever()


# ---------------------------------------------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------------------------------------------

def http(port, method, path, obj=None, timeout=5):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    body = json.dumps(obj).encode() if obj is not None else None
    c.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return json.loads(data) if data else None


def vm_rss(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def working_set(cg):
    """What oomsentry calls the cgroup's usage: usage less the inactive file cache, which the kernel reclaims before
    it kills. Its act_usage_fraction is of this, so the line the bench looks for is too."""
    usage = cg.usage()
    key = "inactive_file" if cg.v2 else "total_inactive_file"
    for row in cg.read("memory.stat").splitlines():
        k, _, v = row.partition(" ")
        if k == key:
            return max(0, usage - int(v))
    return usage


def mem_available_kib():
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise RuntimeError("no MemAvailable")


class LineReader:
    """Lines of a child's stdout, each stamped with CLOCK_MONOTONIC when it arrived."""

    def __init__(self, proc):
        self.lines = []
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self.run, args=(proc,), daemon=True)
        self.t.start()

    def run(self, proc):
        for raw in proc.stdout:
            with self.lock:
                self.lines.append((time.monotonic_ns(), raw.decode(errors="replace").rstrip("\n")))

    def since(self, i):
        with self.lock:
            return self.lines[i:], len(self.lines)

    def count(self):
        with self.lock:
            return len(self.lines)


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(name, xs):
    if not xs:
        return "%-10s no reaction measured" % name
    ms = [x / 1e6 for x in xs]
    return "%-10s n=%-3d p50 %7.2f ms  p90 %7.2f ms  p99 %7.2f ms  max %7.2f ms  min %7.2f ms" % (
        name, len(ms), pct(ms, 50), pct(ms, 90), pct(ms, 99), max(ms), min(ms))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--rate-mib", type=float, default=1024.0, help="steady growth, MiB/s")
    ap.add_argument("--limit-mib", type=int, default=1024)
    ap.add_argument("--act", type=float, default=0.90, help="oomsentry's act_usage_fraction (also earlyoom's line)")
    ap.add_argument("--only", default="oomsentry,earlyoom")
    ap.add_argument("--daemon-arg", action="append", default=[],
                    help="one more argument for oomsentry run (repeat), e.g. --daemon-arg=--priority=realtime")
    ap.add_argument("--cgroup-prefix", default="oomsentry-bench-", help="the stub's memory cgroup name begins so")
    ap.add_argument("--keep", metavar="DIR", help="write each oomsentry run's records (and when each reached the bench) "
                    "to DIR/runN.jsonl, to read what the daemon decided")
    ap.add_argument("--stub", metavar="PORT_FILE", help=argparse.SUPPRESS)
    ap.add_argument("--grower", nargs=2, type=int, metavar=("RATE", "MAX"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stub:
        return stub_main(args.stub)
    if args.grower:
        return grower_main(*args.grower)
    if os.geteuid() != 0:
        print("reaction.py: needs root (BPF, memory cgroups)", file=sys.stderr)
        return 2
    from memcg import MemoryCgroup
    # a benchmark stopped with SIGTERM still cleans up (its finally: the daemons, the cgroup)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))

    only = set(args.only.split(","))
    binary = os.path.join(ROOT, "oomsentry")
    work = tempfile.mkdtemp(prefix="oomsentry-bench.")
    cg = MemoryCgroup(args.limit_mib * MIB, prefix=args.cgroup_prefix)
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    procs = []
    try:
        port_file = os.path.join(work, "port")
        stub = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--stub", port_file],
                                preexec_fn=cg.enter(), stdout=subprocess.DEVNULL)
        procs.append(stub)
        for _ in range(100):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        port = int(open(port_file).read())
        if stub.pid not in cg.pids():
            raise RuntimeError("the stub is not inside its memory cgroup")
        limit = args.limit_mib * MIB
        rate = int(args.rate_mib * MIB)

        def start_daemon():
            d = subprocess.Popen(
                [binary, "run", "--url", "http://127.0.0.1:%d" % port, "--json", "--journal=no",
                 "--comm-prefixes", "nomatch", "--act-usage-fraction", str(args.act), "--restart", "none",
                 "--socket", os.path.join(work, "sock"), "--incident-dir", os.path.join(work, "incidents")]
                + args.daemon_arg,
                stdout=subprocess.PIPE, stderr=open(os.path.join(work, "daemon.stderr"), "w"))
            procs.append(d)
            lines = LineReader(d)
            t_end = time.time() + 30
            while time.time() < t_end:
                if any("server is pid %d " % stub.pid in l for _, l in lines.since(0)[0]):
                    return d, lines
                if d.poll() is not None:
                    break
                time.sleep(0.05)
            raise RuntimeError("oomsentry did not find the stub: %s" % open(os.path.join(work, "daemon.stderr")).read())

        def stop(p):
            p.terminate()
            p.wait()
            procs.remove(p)

        print("== reaction latency (bench/reaction.py) ==")
        print("kernel %s, %d CPUs, load average %s at start; stub in a %d MiB memory cgroup (cgroup %s), steady growth "
              "%.0f MiB/s; oomsentry acts at %.2f of the limit by its policy, earlyoom's line at the same growth"
              % (os.uname().release, os.cpu_count(), " ".join(open("/proc/loadavg").read().split()[:3]),
                 args.limit_mib, "v2" if cg.v2 else "v1", args.rate_mib, args.act))
        react = {"oomsentry": [], "earlyoom": []}
        missed = {"oomsentry": 0, "earlyoom": 0}
        early = {"oomsentry": 0, "earlyoom": 0}
        actions_seen = {}
        daemon_rss = []  # oomsentry's VmRSS once it has acted: what it holds when it works, not only idle
        # where the time goes: the crossing event's record arriving here (the daemon got a CPU and handled it), and
        # how many further RSS steps came before the action (the policy waited for them)
        delivery, steps_before_action = [], []
        # and when the daemon's own record of the action reached the bench (written once the request is sent): an
        # upper bound of the decision's time that no receipt on the stub's side delays
        action_record = []
        thread_react = []
        for i in range(2 * args.runs):
            # alternating, so that the machine's drift falls on both; a fresh oomsentry for each of its runs, so
            # that no run inherits the previous one's cooldowns, verifications or learning, and none runs (and
            # acts) while earlyoom is measured
            who = "oomsentry" if i % 2 == 0 else "earlyoom"
            if who not in only:
                continue
            # what the last run grew goes before a fresh daemon starts: it would act on it at once, and a rung
            # in cooldown would change what it does in the run
            http(port, "POST", "/bench/release")
            if who == "oomsentry":
                daemon, dlines = start_daemon()
            time.sleep(0.6)  # RSS back down, the daemon's verification and cooldown behind it
            # the grower starts (the interpreter's own memory) before the line is placed
            grower = http(port, "POST", "/bench/spawn", {"rate": rate, "max": limit})["pid"]
            time.sleep(0.1)
            usage0 = working_set(cg)
            rss0 = vm_rss(grower)
            line = int(args.act * limit)
            grow_to = limit - 24 * MIB - usage0
            if who == "oomsentry":
                start_idx = dlines.count()
                http(port, "POST", "/bench/go", {"to": grow_to})
                t_end = time.monotonic() + 3 + grow_to / rate
                st = None
                while time.monotonic() < t_end:
                    st = http(port, "GET", "/bench/state")
                    if st["actions"]:
                        break
                    time.sleep(0.02)
                try:
                    daemon_rss.append(vm_rss(daemon.pid))
                except (OSError, RuntimeError):
                    pass
                stop(daemon)
                dlines.t.join(5)  # every line it wrote, up to its exit
                if not st or not st["actions"]:
                    if os.environ.get("REACTION_DEBUG"):
                        print("oomsentry miss: usage %d; daemon said %s" % (
                            cg.usage(), [l[:300] for _, l in dlines.since(0)[0] if '"exec"' not in l and '"exit"' not in l][-12:]))
                    missed[who] += 1
                    continue
                if args.keep:
                    with open(os.path.join(args.keep, "run%d.jsonl" % (i // 2)), "w") as f:
                        f.write(json.dumps({"bench": {"usage0": usage0, "rss0": rss0, "grower": grower, "line": line, "limit": limit,
                                                      "actions": st["actions"] if st else []}}) + "\n")
                        for t_line, l in dlines.since(start_idx)[0]:
                            f.write(json.dumps({"recv_ns": t_line, "line": l}) + "\n")
                t_act, what = st["actions"][0][:2]
                # when the stub's handler thread got to it (later on a busy machine: a Python thread waiting
                # for a CPU), for comparison with the kernel's receipt
                t_thread = st["actions"][0][2] if len(st["actions"][0]) > 2 else t_act
                actions_seen[what] = actions_seen.get(what, 0) + 1
                # the RSS event that crosses the line: the first whose step puts the cgroup at or above it
                t_ev = None
                later_steps = 0  # RSS steps of the stub after the crossing one and before the action
                for t_line, l in dlines.since(start_idx)[0]:
                    try:
                        rec = json.loads(l)
                    except ValueError:
                        continue
                    if rec.get("event") != "rss" or rec.get("pid") != grower:
                        continue
                    # the working set the step puts the cgroup at: the grower's growth and its page tables (8
                    # bytes per 4 KiB page, charged to the cgroup too)
                    if t_ev is None and usage0 + (rec["rss_bytes"] - rss0) * 513 // 512 >= line:
                        t_ev = rec["event_monotonic_ns"]
                        # when its record reached us: the daemon had the CPU, read the ring and wrote it
                        delivery.append(t_line - t_ev)
                    elif t_ev is not None and rec["event_monotonic_ns"] < t_act:
                        later_steps += 1
                t_rec = next((t_line for t_line, l in dlines.since(start_idx)[0]
                              if '"event":"action"' in l and '"result":"done"' in l), None)
                if t_ev is None or t_act < t_ev:
                    # acted before an RSS event reached the line: on the step before it (the daemon reads the
                    # working set when it handles the step, the growth goes on meanwhile), the timer sample or a
                    # forecast
                    early["oomsentry"] += 1
                    continue
                react[who].append(t_act - t_ev)
                thread_react.append(t_thread - t_ev)
                steps_before_action.append(later_steps)
                if t_rec is not None:
                    action_record.append(t_rec - t_ev)
                if later_steps and os.environ.get("REACTION_DEBUG"):
                    print("oomsentry acted %.1f ms after the crossing step, %d steps later; usage at the start %d MiB, "
                          "records: %s" % ((t_act - t_ev) / 1e6, later_steps, usage0 >> 20, [
                              l[:400] for _, l in dlines.since(start_idx)[0]
                              if '"rss"' in l or '"decision"' in l or '"action"' in l][-8:]))
            else:
                avail = mem_available_kib()
                growth_to_line = line - usage0
                threshold_kib = avail - growth_to_line // 1024
                eo = subprocess.Popen(["earlyoom", "--dryrun", "-M", str(threshold_kib), "-r", "0",
                                       "--prefer", "^python3$"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                procs.append(eo)
                elines = LineReader(eo)
                time.sleep(0.3)  # let it start and print its banner
                # earlyoom turns -M into a percentage of MemTotal (2 decimals): the line it really applies
                eo_pct = None
                for _, l in elines.since(0)[0]:
                    if "sending SIGTERM when mem <=" in l:
                        eo_pct = float(l.split("<=")[1].split("%")[0])
                total_kib = int(open("/proc/meminfo").readline().split()[1])
                # when the machine's MemAvailable really crossed that line, sampled every 0.5 ms: other processes
                # move it too, so the stub's own growth alone would not tell
                samples = []
                stop_sampling = threading.Event()

                def sample():
                    while not stop_sampling.is_set():
                        samples.append((time.monotonic_ns(), mem_available_kib()))
                        time.sleep(0.0005)
                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                http(port, "POST", "/bench/go", {"to": grow_to})
                t_end = time.monotonic() + 3 + grow_to / rate
                t_fire = None
                while time.monotonic() < t_end and t_fire is None:
                    for t_line, l in elines.since(0)[0]:
                        if "sending SIGTERM to" in l:
                            t_fire = t_line
                            break
                    time.sleep(0.01)
                stop_sampling.set()
                sampler.join()
                eo.send_signal(signal.SIGTERM)
                eo.wait()
                procs.remove(eo)
                t_cross = None
                if eo_pct is not None:
                    for t_s, avail_s in samples:
                        if avail_s * 100.0 / total_kib <= eo_pct:
                            t_cross = t_s
                            break
                if t_fire is None or t_cross is None:
                    if os.environ.get("REACTION_DEBUG"):
                        print("earlyoom miss: line %s%%, fire %s, cross %s, lines %s" % (
                            eo_pct, t_fire, t_cross, elines.since(0)[0][-3:]))
                    missed[who] += 1
                    continue
                react[who].append(t_fire - t_cross)
        print()
        for who in ("oomsentry", "earlyoom"):
            if who in only:
                print(summary(who, react[who]) + ("  (%d runs without a reaction)" % missed[who] if missed[who] else "")
                      + ("  (%d runs acted before any RSS event reached the line)" % early[who] if early[who] else ""))
        if actions_seen:
            print("oomsentry's first action per run: %s" % ", ".join("%s %d" % kv for kv in sorted(actions_seen.items())))
        if delivery:
            print("oomsentry: crossing event -> its record read here: p50 %.2f ms, p90 %.2f ms, max %.2f ms; "
                  "further RSS steps before the action: %s" % (
                      pct(delivery, 50) / 1e6, pct(delivery, 90) / 1e6, max(delivery) / 1e6,
                      ", ".join("%d in %d runs" % kv for kv in sorted(collections.Counter(steps_before_action).items()))))
        if thread_react:
            print("oomsentry: crossing event -> the stub's handler thread had the request: p50 %.2f ms, p90 %.2f ms, "
                  "p99 %.2f ms, max %.2f ms (the figure above counts from the kernel's receipt)" % (
                      pct(thread_react, 50) / 1e6, pct(thread_react, 90) / 1e6, pct(thread_react, 99) / 1e6,
                      max(thread_react) / 1e6))
        if action_record:
            print("oomsentry: crossing event -> its action's record read here: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, "
                  "max %.2f ms (%d runs)" % (pct(action_record, 50) / 1e6, pct(action_record, 90) / 1e6,
                                             pct(action_record, 99) / 1e6, max(action_record) / 1e6, len(action_record)))
        if daemon_rss:
            print("oomsentry's VmRSS at the end of a run (after acting): median %.1f MiB, max %.1f MiB" % (
                statistics.median(daemon_rss) / MIB, max(daemon_rss) / MIB))
        if args.daemon_arg:
            print("oomsentry run with: %s" % " ".join(args.daemon_arg))
        if react["oomsentry"] and react["earlyoom"]:
            print("p50 ratio oomsentry/earlyoom: %.3f; p99 ratio: %.3f (same run, same growth)" % (
                pct(react["oomsentry"], 50) / pct(react["earlyoom"], 50),
                pct(react["oomsentry"], 99) / pct(react["earlyoom"], 99)))
        if os.environ.get("REACTION_RAW"):
            print(json.dumps(react))
        return 0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                # the stub records and ignores SIGTERM (an action it may receive): it is ours, in our cgroup
                p.kill() if p is procs[0] else p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        cg.destroy()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    sys.exit(main())
