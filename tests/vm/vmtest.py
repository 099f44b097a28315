#!/usr/bin/env python3
"""`make vmtest`: the integration core subset on Debian's own kernels under qemu, one table kernel x result.

  python3 tests/vm/vmtest.py [--kernels bullseye,bookworm,trixie] [--cgroup v2|v1] [--accel tcg|kvm]

Each kernel boots the same bookworm root (the oomsentry binary is built on the host for bookworm's libraries); the
work tree travels on a second drive and the results come back on it. See tests/vm/README.md.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vm  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# what the tests run with, besides the binary's own libraries (runtime_packages)
TEST_PACKAGES = ["python3", "python3-pytest", "python3-pytest-timeout", "procps", "iproute2", "util-linux"]
# The documented core subset (issue 13): what differs between kernels and cgroup versions. Each column of the table
# is one or more of these tests; a column passes when all of its tests pass.
COLUMNS = [
    ("OOM victim (v2 path)", ["tests/integration/test_foundation.py::test_oom_victim_attributed"]),
    ("exit 3 + SIGTERM", ["tests/integration/test_foundation.py::test_exit_causes"]),
    ("3rd generation", ["tests/integration/test_prevention.py::test_oomsentry_prevents_the_kill"]),
]
EXTRA_TESTS = [
    "tests/integration/test_foundation.py::test_large_file_mapping_reported",
    "tests/integration/test_foundation.py::test_children_of_tracked_are_tracked",
    "tests/integration/test_foundation.py::test_exit_0_after_a_child_oom_kill_is_reported_as_such",
    "tests/integration/test_foundation.py::test_one_oom_victim_record_per_death",
    "tests/integration/test_generations.py",
    "tests/integration/test_orphans.py",
    "tests/integration/test_pidns.py",
    # the memory.high brake exists on cgroup v2 only: the guests are where it is proven (a v1 host runs its v1 side)
    "tests/integration/test_brake.py",
]
SUITES = {"bullseye": "5.10", "bookworm": "6.1", "trixie": "6.12"}


def install_vminit(tree):
    dst = os.path.join(tree, "sbin", "vminit")
    shutil.copy(os.path.join(HERE, "vminit"), dst)
    os.chmod(dst, 0o755)


def vminit_key():
    with open(os.path.join(HERE, "vminit"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def runtime_packages(binary):
    """The Debian packages of the binary's shared libraries, as this (bookworm) host names them: the guest's root
    follows whatever the Makefile links, with no list to keep in step."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = [l.split("=>")[1].split()[0] for l in out.splitlines()
            if "=>" in l and l.split("=>")[1].strip().startswith("/")]
    # dpkg knows a file by the path its package ships (/lib/... or /usr/lib/... under merged /usr): ask for both
    libs += [os.path.realpath(l) for l in libs]
    owners = subprocess.run(["dpkg", "-S"] + libs, capture_output=True, text=True).stdout
    return sorted({l.split(":")[0] for l in owners.splitlines() if ":" in l})


def test_root(cache):
    return vm.build_root("bookworm", TEST_PACKAGES + runtime_packages(os.path.join(ROOT, "oomsentry")), hook=install_vminit, hook_key="vminit:" + vminit_key(),
                         cache=cache)


def stage_work(dest, tests, timeout):
    """What the guest needs from the work tree: the binary, the tests, and the script that runs them."""
    os.makedirs(dest)
    shutil.copy(os.path.join(ROOT, "oomsentry"), dest)
    shutil.copytree(os.path.join(ROOT, "tests"), os.path.join(dest, "tests"),
                    # node_modules: the Kubernetes schema validator's 33 MiB (tests/deploy/k8s), no use in a guest
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "fuzz", "unit", "fixtures",
                                                  "node_modules"))
    shutil.copy(os.path.join(HERE, "guest-run"), os.path.join(dest, "guest-run"))
    write_plan(os.path.join(dest, "results"), tests, timeout)


def write_plan(results, tests, timeout):
    os.makedirs(results)
    with open(os.path.join(results, "tests.txt"), "w") as f:
        f.write("\n".join(tests) + "\n")
    with open(os.path.join(results, "timeout"), "w") as f:
        f.write("%d\n" % timeout)


# outcomes that pass a cell: a known failure marked xfail (its reason in the test) is reported, not hidden
OK = ("passed", "xfailed")


def parse_results(path):
    res = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("{"):
                    r = json.loads(line)
                    res[r["nodeid"]] = r["outcome"]
    except OSError:
        pass
    return res


def collect(row, out, name):
    row["tests"] = parse_results(os.path.join(out, "results.jsonl"))
    try:
        with open(os.path.join(out, "startup.json")) as f:
            row["startup"] = json.load(f)
    except (OSError, ValueError):
        row["startup"] = {}
    try:
        with open(os.path.join(out, "startup-all.json")) as f:
            row["startup_all"] = json.load(f)
    except (OSError, ValueError):
        row["startup_all"] = {}
    keep = os.path.join(vm.DEFAULT_CACHE if not row.get("cache") else row["cache"], "pytest-%s.log" % name)
    if os.path.exists(os.path.join(out, "pytest.log")):
        shutil.copy(os.path.join(out, "pytest.log"), keep)
    row["pytest_log"] = keep
    return row


def host_row(args, workdir):
    """The same subset on the machine itself (its own kernel and cgroup version), for the table's last row."""
    t0 = time.time()
    out = os.path.join(workdir, "host-results")
    write_plan(out, plan(args), args.timeout)
    env = dict(os.environ, VMTEST_WORK=ROOT, VMTEST_RESULTS=out)
    subprocess.run(["sh", os.path.join(HERE, "guest-run")], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.STDOUT)
    cg = "v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "v1"
    row = {"suite": "host", "kernel": os.uname().release + " (host)", "cgroup": cg, "timed_out": False,
           "seconds": round(time.time() - t0), "console": "-", "cache": args.cache, "planned": plan(args)}
    return collect(row, out, "host")


def plan(args):
    if args.tests:
        return args.tests.split(",")
    return [t for _, ts in COLUMNS for t in ts] + ([] if args.quick else EXTRA_TESTS)


def one_kernel(suite, args, root_img, workdir):
    t0 = time.time()
    kernel, version = vm.fetch_kernel(suite, args.cache)
    tests = plan(args)
    stage = os.path.join(workdir, suite)
    # the guest stops its tests a minute before the host gives up on it, so that the results still come back
    stage_work(stage, tests, max(60, args.timeout - 90))
    img = vm.data_image(stage, os.path.join(workdir, suite + ".img"))
    cmdline = "cgroup_no_v1=all" if args.cgroup == "v2" else ""
    console_log = os.path.join(args.cache, "console-%s.log" % suite)
    text, timed_out = vm.boot(kernel, root_img, drives=[img], cmdline=cmdline, init="/sbin/vminit",
                              memory=args.memory, timeout=args.timeout, console_log=console_log, accel=args.accel)
    row = {"suite": suite, "kernel": version, "seconds": round(time.time() - t0), "timed_out": timed_out,
           "console": console_log, "cgroup": args.cgroup, "cache": args.cache, "planned": tests}
    out = os.path.join(workdir, suite + "-results")
    os.makedirs(out)
    for name in ("results.jsonl", "startup.json", "startup-all.json", "pytest.log"):
        vm.read_from_image(img, "/results/" + name, os.path.join(out, name))
    return collect(row, out, suite)


def probes_cell(row):
    m = row["startup"].get("probes", "")
    # "9 of 11 probes attached (...)": n/N of the programs this kernel could load and attach
    parts = m.split()
    if len(parts) >= 3 and parts[1] == "of":
        n, total = int(parts[0]), int(parts[2])
        return "%d/%d" % (n, total), n == total
    return "-", False


def tail(path, n):
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()[-n:]
    except OSError:
        return []


def failure_details(r):
    """What a failed row needs to be understood from CI's output alone, which keeps only its end: the tests that
    never reported (the one that hung is the first), and the end of the guest's pytest log and console."""
    missing = [t for t in r.get("planned", []) if not any(k == t or k.startswith(t + "::") for k in r["tests"])]
    if missing:
        print("%s: no result from %s" % (r["kernel"], ", ".join(missing)))
    for what, path, n in (("pytest", r.get("pytest_log"), 25), ("console", r.get("console"), 15)):
        lines = tail(path, n) if path and path != "-" else []
        if lines:
            print("%s: last %d lines of %s (%s):" % (r["kernel"], len(lines), what, path))
            for line in lines:
                print("    " + line[:200])


def print_table(rows):
    head = ["kernel", "cgroup", "probes", "BPF"] + [c for c, _ in COLUMNS] + ["others", "time"]
    lines = []
    all_ok = True
    for r in rows:
        cells = [r["kernel"], r["cgroup"]]
        pc, pok = probes_cell(r)
        cells.append(pc + (" ✔" if pok else " ✘"))
        bpf_ok = r["startup"].get("bpf") is True
        cells.append("✔" if bpf_ok else "✘ polling")
        ok = pok and bpf_ok
        for _, tests in COLUMNS:
            good = all(r["tests"].get(t) in OK for t in tests)
            ok &= good
            cells.append("✔" if good else "✘")
        column_tests = {t for _, ts in COLUMNS for t in ts}
        others = {k: v for k, v in r["tests"].items() if k not in column_tests}
        bad = [k for k, v in others.items() if v not in OK]
        ok &= not bad and not r["timed_out"]
        cells.append("%d/%d ✔" % (len(others) - len(bad), len(others)) if not bad else
                     "%d/%d ✘" % (len(others) - len(bad), len(others)))
        cells.append("%ds%s" % (r["seconds"], " TIMEOUT" if r["timed_out"] else ""))
        all_ok &= ok
        lines.append(cells)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    fmt = " | ".join("%%-%ds" % w for w in widths)
    print(fmt % tuple(head))
    print("-+-".join("-" * w for w in widths))
    for cells in lines:
        print(fmt % tuple(cells))
    for r in rows:
        bad = sorted(k for k, v in r["tests"].items() if v not in OK)
        if bad or not r["tests"]:
            print("%s: %s (console: %s, pytest: %s)" % (r["kernel"], ", ".join("%s %s" % (k, r["tests"][k])
                                                                             for k in bad) or "no results",
                                                     r["console"], r["pytest_log"]))
        if r["timed_out"] or bad or not r["tests"]:
            failure_details(r)
        if r["startup"].get("probes"):
            print("%s: %s" % (r["kernel"], r["startup"]["probes"]))
        if r.get("startup_all", {}).get("probes"):
            print("%s with --memcg-events-probe: %s" % (r["kernel"], r["startup_all"]["probes"]))
    return all_ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernels", default=os.environ.get("VMTEST_KERNELS", "bullseye,bookworm,trixie"))
    ap.add_argument("--cgroup", default=os.environ.get("VMTEST_CGROUP", "v2"), choices=["v1", "v2"])
    ap.add_argument("--accel", default=os.environ.get("VMTEST_ACCEL") or None, choices=["kvm", "tcg"])
    ap.add_argument("--memory", default="3G")
    ap.add_argument("--timeout", type=int, default=int(os.environ.get("VMTEST_TIMEOUT", "1200")))
    ap.add_argument("--quick", action="store_true", default=os.environ.get("VMTEST_QUICK") == "1",
                    help="only the tests behind the table's columns")
    ap.add_argument("--cache", default=vm.DEFAULT_CACHE)
    ap.add_argument("--tests", default=os.environ.get("VMTEST_TESTS", ""),
                    help="comma-separated pytest node ids instead of the core subset")
    ap.add_argument("--host", action=argparse.BooleanOptionalAction,
                    default=os.environ.get("VMTEST_HOST", "1") == "1",
                    help="a row for the same tests on this machine's own kernel (default; VMTEST_HOST=0 or --no-host)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("vmtest: needs root (debootstrap, apt)", file=sys.stderr)
        return 2
    if not os.access(os.path.join(ROOT, "oomsentry"), os.X_OK):
        print("vmtest: build oomsentry first (make)", file=sys.stderr)
        return 2
    t0 = time.time()
    root_img = test_root(args.cache) if args.kernels else None
    rows = []
    os.makedirs(args.cache, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="run-", dir=args.cache)
    try:
        for suite in filter(None, args.kernels.split(",")):
            row = one_kernel(suite, args, root_img, workdir)
            rows.append(row)
            vm.log("%s done in %d s" % (row["kernel"], row["seconds"]))
        if args.host:
            rows.append(host_row(args, workdir))
            vm.log("host done in %d s" % rows[-1]["seconds"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ok = print_table(rows)
    print("vmtest: %s in %d s" % ("all passed" if ok else "FAILED", time.time() - t0))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
