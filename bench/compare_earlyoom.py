#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Issue 5: the same ComfyUI workload with no watchdog, with earlyoom, and with oomsentry, side by side.

The ComfyUI simulator (tests/sim/comfy_sim.py, one python3 process with real memory) runs in a fresh memory cgroup
limited to 1536 MiB: a 450 MiB model, a 350 MiB transient peak and 300 MiB kept per generation. Six prompts are
queued; the third generation does not fit. Each watchdog gets the same scenario, one after the other (never at the
same time: they would share the two CPUs and earlyoom would watch the others' processes too). Printed per watchdog:
the cgroup's OOM-kill counter (memory.oom_control oom_kill), prompts finished with success according to the
simulator's state file, and the time from the first POST /prompt until all six were done, the server died, or the
timeout. Nothing here is a target: the table is what this run measured.

usage: sudo /usr/bin/python3 bench/compare_earlyoom.py [--only none,earlyoom,oomsentry] [--timeout 180]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import conftest  # noqa: E402  (the integration tests' helpers: Cgroup, Sim, Procs, Daemon, free_port)
import shapes  # noqa: E402  (tests/sim, on the path conftest set: enter_checked)

MiB = 1 << 20
LIMIT_BYTES = 1536 * MiB
N_PROMPTS = 6
SIM_ARGS = ["--model-mb", "450", "--peak-mb", "350", "--leak-mb", "300", "--steps", "20", "--step-ms", "100"]
# the scenario runs about ten times faster than real ComfyUI, so the daemon's periods shrink with it
# (the same flags as tests/integration/test_prevention.py)
OOMSENTRY_ARGS = ["--journal=no", "--sample-interval", "200ms", "--poll-interval", "200ms", "--rss-step", "32M",
                  "--cooldown", "3s"]
EARLYOOM = "/usr/bin/earlyoom"
CG_PREFIX = "oomsentry-bench-"


class BenchCgroup(conftest.Cgroup):
    """conftest.Cgroup under its own name prefix; its members verify that they really are inside it."""

    def __init__(self, limit_bytes):
        super().__init__(limit_bytes, CG_PREFIX)

    def preexec(self):
        # a server that grows until the kernel kills it must never run unlimited: the matrix's own check
        return shapes.enter_checked(self)

    def peak_bytes(self):
        try:
            return int(self.read("memory.max_usage_in_bytes"))
        except (OSError, ValueError):
            return 0


def post_prompts(sim, n):
    ids = []
    for i in range(n):
        body = {"prompt": {"1": {"class_type": "KSampler", "inputs": {"seed": i}}}, "client_id": "bench"}
        ids.append(sim.request("POST", "/prompt", body)["prompt_id"])
    return ids


def successes(sim):
    return sum(1 for line in sim.prompt_lines() if line.get("status") == "success")


def wait_done(sim, ids, timeout_s):
    """Until every prompt finished (history completed, or as many successes in the state file: a requeued prompt
    gets a new id), the server died, or the timeout. Returns how it ended."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sim.proc.poll() is not None:
            return "server died"
        if successes(sim) >= len(ids):
            return "all done"
        hist = [sim.history(i) for i in ids]
        if all(h and h["status"]["completed"] for h in hist):
            return "all done"
        time.sleep(0.2)
    return "timeout after %d s" % timeout_s


def describe_rc(rc):
    if rc is None:
        return "running"
    if rc < 0:
        return "signal %d%s" % (-rc, " SIGKILL" if rc == -9 else "")
    return "exit %d" % rc


def run_scenario(kind, timeout_s):
    tmp = tempfile.mkdtemp(prefix="oomsentry-bench-")
    procs = conftest.Procs()
    cg = None
    daemon = None
    watchdog = None
    result = {"kind": kind, "actions": [], "note": ""}
    try:
        cg = BenchCgroup(LIMIT_BYTES)
        if kind == "earlyoom":
            # Debian's package, default settings: act when the machine's available memory and swap are below 10 %
            watchdog = procs.start([EARLYOOM], stdout=open(os.path.join(tmp, "earlyoom.log"), "w"),
                                   stderr=subprocess.STDOUT)
            time.sleep(0.5)
            if watchdog.poll() is not None:
                raise RuntimeError("earlyoom exited at start: rc %s" % watchdog.returncode)
        sim = conftest.Sim(procs, tmp, conftest.free_port(), SIM_ARGS, cgroup=cg,
                           log=os.path.join(tmp, "sim.log"))
        if kind == "oomsentry":
            daemon = conftest.Daemon(tmp, "run", ["--url", sim.url] + OOMSENTRY_ARGS)
            daemon.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid, timeout=30,
                            what="oomsentry finds the server")
        t0 = time.monotonic()
        ids = post_prompts(sim, N_PROMPTS)
        result["end"] = wait_done(sim, ids, timeout_s)
        result["seconds"] = time.monotonic() - t0
        # a killed server's cgroup counter is final once it is reaped
        if sim.proc.poll() is not None:
            time.sleep(0.2)
        result["oom_kills"] = cg.oom_kills()
        result["done"] = successes(sim)
        result["peak_mib"] = cg.peak_bytes() / MiB
        result["server"] = describe_rc(sim.proc.poll())
        if watchdog is not None:
            result["note"] = earlyoom_note(watchdog, os.path.join(tmp, "earlyoom.log"))
        if daemon is not None:
            result["actions"] = daemon.find(lambda r: r.get("event") == "action")
            victims = daemon.find(lambda r: r.get("event") == "oom_victim")
            result["note"] = "oomsentry saw %d OOM victim(s)" % len(victims)
    finally:
        if daemon is not None:
            daemon.stop()
        procs.cleanup()
        if cg is not None:
            cg.destroy()
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def earlyoom_note(proc, log_path):
    """Whether earlyoom acted, and the machine-wide view it decides on (it never reads a cgroup's limit)."""
    try:
        with open(log_path, errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        lines = []
    sent = [l for l in lines if l.startswith("sending ") and " to process " in l]
    view = next((l.strip() for l in lines if l.strip().startswith("mem avail")), "no 'mem avail' line")
    return "earlyoom %s, %d kill signal(s) sent; its first report: %s" % (
        "still running" if proc.poll() is None else "exited " + describe_rc(proc.returncode), len(sent), view)


def fmt_action(a):
    parts = [a.get("action", "?"), a.get("result", "")]
    if a.get("freed_bytes"):
        parts.append("freed %.0f MiB" % (a["freed_bytes"] / MiB))
    if "verified" in a:
        parts.append("verified=%s" % a["verified"])
    reason = a.get("reason") or a.get("message", "")
    return "%s: %s" % (" ".join(p for p in parts if p), reason)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="none,earlyoom,oomsentry",
                    help="comma-separated subset of none,earlyoom,oomsentry")
    ap.add_argument("--timeout", type=float, default=180, help="seconds per scenario (default 180)")
    args = ap.parse_args()
    kinds = [k for k in args.only.split(",") if k]
    bad = [k for k in kinds if k not in ("none", "earlyoom", "oomsentry")]
    if bad:
        ap.error("unknown watchdog(s): %s" % ",".join(bad))
    if os.geteuid() != 0:
        print("compare_earlyoom.py: needs root (memory cgroups, BPF)", file=sys.stderr)
        return 2
    if not os.path.isdir(conftest.MEMCG_ROOT):
        print("compare_earlyoom.py: no cgroup v1 memory controller at %s" % conftest.MEMCG_ROOT, file=sys.stderr)
        return 2
    if "oomsentry" in kinds and not os.access(conftest.BINARY, os.X_OK):
        print("compare_earlyoom.py: %s missing; run make" % conftest.BINARY, file=sys.stderr)
        return 2
    if "earlyoom" in kinds and not os.access(EARLYOOM, os.X_OK):
        print("compare_earlyoom.py: %s missing (apt-get install earlyoom); skipping it" % EARLYOOM, file=sys.stderr)
        kinds.remove("earlyoom")

    print("== no watchdog vs earlyoom vs oomsentry (bench/compare_earlyoom.py) ==")
    print("ComfyUI simulator in a %d MiB memory cgroup, %s, %d prompts; oomsentry run %s"
          % (LIMIT_BYTES // MiB, " ".join(SIM_ARGS), N_PROMPTS, " ".join(OOMSENTRY_ARGS)))
    results = []
    for kind in kinds:
        print("  running: %s ..." % kind, flush=True)
        results.append(run_scenario(kind, args.timeout))

    print()
    hdr = "%-10s %9s %15s %10s %16s  %-12s %s" % ("watchdog", "OOM kills", "prompts done", "time (s)",
                                                   "cgroup peak MiB", "ended by", "server at the end")
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        print("%-10s %9d %11d of %d %10.1f %16.0f  %-12s %s" % (r["kind"], r["oom_kills"], r["done"], N_PROMPTS,
                                                               r["seconds"], r["peak_mib"], r["end"], r["server"]))
    for r in results:
        if r["note"]:
            print("%s: %s" % (r["kind"], r["note"]))
        if r["kind"] == "oomsentry":
            acts = r["actions"]
            print("oomsentry actions (%d records with event=action):" % len(acts))
            for a in acts:
                print("  " + fmt_action(a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
