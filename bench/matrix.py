#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Issue 14: the prevention matrix. Every workload shape of tests/sim/shapes.py, in one run: first without a watchdog
(the kernel must OOM-kill it, or the shape proves nothing), then under `oomsentry run --restart signal` with every
other setting at its default, at the shape's own pace and ten times faster.

Printed per shape: without (prompts finished before the kill / prompts that can fit, OOM kills) and, per pace, with
(prompts that can fit finished exactly once, kernel OOM kills, actions carried out, server restarts, seconds).
Exit status 1 when, on a shape with a restart method, oomsentry let the kernel kill or a prompt that can fit did not
finish exactly once (counted by content across restarts); also when a shape was not OOM-killed without a watchdog.
The logs and timeline of every failed run are kept under --keep.

usage: sudo /usr/bin/python3 bench/matrix.py [--runs 3] [--only a,b] [--pace 1,10] [--keep DIR] [--list]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "sim"))
import memcg  # noqa: E402
import shapes  # noqa: E402


def fmt_without(r):
    if r is None:
        return "-"
    if r.error:
        return "ERROR"
    return "%d/%d, %d" % (r.finished, len(r.fit), r.oom_kills)


def fmt_with(r):
    if r is None:
        return "-"
    if r.error:
        return "ERROR"
    dup = " (+%d dup)" % r.duplicates if r.duplicates else ""
    return "%d/%d%s, %d, %d, %d, %.0f" % (r.exactly_once, len(r.fit), dup, r.oom_kills, r.actions, r.restarts,
                                         r.seconds)


def verdict(rs):
    bad = [r for r in rs if r is not None and not r.ok and (r.enforced or r.mode == "without")]
    info = [r for r in rs if r is not None and not r.ok and not r.enforced and r.mode == "with"]
    if bad:
        return "FAIL"
    if info:
        return "not held (restart = none)"
    return "ok"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1, help="repeat the whole matrix (default 1)")
    ap.add_argument("--only", default="", help="comma-separated shape names (default: all; --list shows them)")
    ap.add_argument("--pace", default="1,10", help="paces of the runs with oomsentry (default 1,10)")
    ap.add_argument("--no-without", action="store_true", help="skip the runs without a watchdog")
    ap.add_argument("--keep", default=os.path.join(ROOT, "bench", "out", "matrix-" + time.strftime("%Y%m%d-%H%M%S")),
                    help="where the logs of failed runs go")
    ap.add_argument("--cgroup-prefix", default="oomsentry-bench-matrix-")
    ap.add_argument("--list", action="store_true", help="list the shapes and exit")
    args = ap.parse_args()

    todo = shapes.SHAPES
    if args.only:
        names = [n for n in args.only.split(",") if n]
        unknown = [n for n in names if n not in shapes.BY_NAME]
        if unknown:
            ap.error("unknown shape(s): %s (--list)" % ",".join(unknown))
        todo = [shapes.BY_NAME[n] for n in names]
    if args.list:
        for s in todo:
            print("%-22s %5d MiB  restart=%-6s %s" % (s.name, s.limit_mib, s.restart, s.story))
        return 0
    paces = [int(p) for p in args.pace.split(",") if p]
    if os.geteuid() != 0:
        print("matrix.py: needs root (memory cgroups, BPF)", file=sys.stderr)
        return 2
    if not memcg.available():
        print("matrix.py: no memory cgroup controller (v1 or v2)", file=sys.stderr)
        return 2
    if not os.access(shapes.BINARY, os.X_OK):
        print("matrix.py: %s missing; run make" % shapes.BINARY, file=sys.stderr)
        return 2
    have_torch = shapes.torch_available()
    # the binary's own version, read once: the tree may move on while the matrix runs
    version = subprocess.run([shapes.BINARY, "--version"], capture_output=True, text=True).stdout.strip() or "?"
    os.makedirs(args.keep, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="oomsentry-matrix.")

    print("== prevention matrix (bench/matrix.py): each shape without a watchdog, then `oomsentry run --restart "
          "signal`, defaults otherwise, at pace %s ==" % ", ".join("x%d" % p for p in paces))
    print("columns: without = prompts finished before the kill / prompts that can fit, kernel OOM kills; "
          "with xN = prompts that can fit finished exactly once / can fit, kernel OOM kills, actions done, "
          "server restarts, seconds")
    failed = 0
    t_all = time.monotonic()
    for run in range(1, args.runs + 1):
        t_run = time.monotonic()
        rows = []
        for s in todo:
            if s.torch and not have_torch:
                rows.append((s, None, {}, "skipped: no python3-torch (make bench installs it)"))
                continue
            tag = "-r%d" % run if args.runs > 1 else ""
            without = None
            if not args.no_without:
                print("  run %d: %-22s without ..." % (run, s.name), end="", flush=True)
                without = shapes.run_shape(s, "without", 1, workdir, args.cgroup_prefix, keep=args.keep, tag=tag)
                print(" %s in %.0f s" % (fmt_without(without), without.seconds), flush=True)
            withs = {}
            for p in paces:
                print("  run %d: %-22s with x%-3d ..." % (run, s.name, p), end="", flush=True)
                r = shapes.run_shape(s, "with", p, workdir, args.cgroup_prefix, keep=args.keep, tag=tag)
                withs[p] = r
                print(" %s%s" % (fmt_with(r), "" if r.ok else "  <- " + "; ".join(r.problems())), flush=True)
            v = verdict([without] + list(withs.values()))
            if v == "FAIL":
                failed += 1
            rows.append((s, without, withs, v))
        print()
        print("run %d of %d (%.0f s), %s:" % (run, args.runs, time.monotonic() - t_run, version))
        head = ["shape", "restart", "without (prompts, OOM kills)"] + \
            ["with x%d (prompts, OOM kills, actions, restarts, s)" % p for p in paces] + ["verdict"]
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join(" --- " for _ in head) + "|")
        for s, without, withs, v in rows:
            cells = [s.name, s.restart, fmt_without(without)] + [fmt_with(withs.get(p)) for p in paces] + [v]
            print("| " + " | ".join(cells) + " |")
        problems = [(s, r) for s, without, withs, v in rows for r in [without] + list(withs.values())
                    if r is not None and not r.ok]
        for s, r in problems:
            print("  %s %s x%d: %s%s" % (s.name, r.mode, r.pace, "; ".join(r.problems()),
                                        " (logs: %s)" % r.artifacts if r.artifacts else ""))
        print()
    try:
        os.rmdir(workdir)
    except OSError:
        pass
    if not os.listdir(args.keep):
        os.rmdir(args.keep)
    print("matrix: %d shape run(s) failed the guarantee in %d run(s), %.0f s" % (failed, args.runs,
                                                                               time.monotonic() - t_all))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
