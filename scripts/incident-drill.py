#!/usr/bin/python3
"""The path of docs/incident-analysis.md, run for real on the demo's scenario and checked.

The ComfyUI simulator leaks 300 MiB per generation in a 1.5 GiB memory cgroup; `oomsentry run` prevents the OOM
kill. Around it, what an operator does after an alert: perf on oomsentry's USDT probes (`perf probe -x BINARY
--add 'sdt_oomsentry:*'`, `perf record -e ...`), `journalctl -t oomsentry OOMSENTRY_EVENT=action`, and
`oomsentry report` on the incident. Then it checks that the generation, action and leak probes fired, each with
exactly the numbers of the record written at the same moment.

    sudo scripts/incident-drill.py [--keep DIR]      exit 0 when every check holds; 1 with the failed checks; 2 when
                                                     it cannot run (not root, no perf, no uprobes, no journald)
Runs in `make test` (tests/integration/test_operations.py). Needs root, perf (linux-perf), uprobes
(CONFIG_UPROBE_EVENTS, tracefs), a memory cgroup controller and a listening journald.
"""
import argparse
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "sim"))
import demo  # noqa: E402  (the demo's scenario: simulator arguments, daemon arguments, prompts)
from memcg import MemoryCgroup  # noqa: E402

BINARY = os.path.join(ROOT, "oomsentry")
JOURNAL_SOCKET = "/run/systemd/journal/socket"
# perf's uprobe events are global to the machine: one drill at a time
LOCK = "/run/oomsentry-incident-drill.lock"
# the action probe's first argument (docs/oomsentry.8, USDT PROBES; enum policy_rung)
RUNGS = {"reap_orphans": 1, "free_models": 2, "free_all": 3, "interrupt_requeue": 4, "restart": 5, "kill": 6}
PROBES = ("generation", "action", "leak")


class CannotRun(Exception):
    pass


def say(text=""):
    print(text, flush=True)


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(cmd, **kw)


def journald_listening():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.connect(JOURNAL_SOCKET)
        return True
    except OSError:
        return False
    finally:
        s.close()


def add_probes(perf):
    """perf buildid-cache --add, then perf probe --add 'sdt_oomsentry:*'; returns the event names perf chose (it
    appends _1, _2 … when another binary's probes already hold the plain names). perf finds SDT notes through its
    build-id cache, which ~/.debug shares between every binary with the same build id: a private one keeps a
    stale entry of another copy from hiding the probes."""
    r = run(perf + ["buildid-cache", "--add", BINARY])
    if r.returncode != 0:
        raise CannotRun("perf buildid-cache --add failed:\n" + r.stderr)
    # --force: when the plain names are taken, add ours as action_1, … instead of failing
    r = run(perf + ["probe", "--force", "-x", BINARY, "--add", "sdt_oomsentry:*"])
    if r.returncode != 0:
        raise CannotRun("perf probe --add failed (uprobes need CONFIG_UPROBE_EVENTS and tracefs):\n" + r.stderr)
    events = re.findall(r"^\s+(sdt_oomsentry:\w+)\s+\(on ", r.stderr + r.stdout, re.M)
    names = {}
    for e in events:
        base = re.sub(r"_\d+$", "", e.split(":", 1)[1])
        names[base] = e
    if set(names) != set(PROBES):
        raise CannotRun("perf probe added %s; expected the probes %s" % (events, PROBES))
    return names


def parse_perf_script(text, names):
    """{probe: [(arg1, arg2, arg3?), …]} from `perf script` lines such as
    'oomsentry 25132 [001] 3555.739385: sdt_oomsentry:action: (556375e7dce8) arg1=2 arg2=1521065984 arg3=...'"""
    by_event = {v: k for k, v in names.items()}
    hits = {p: [] for p in PROBES}
    for line in text.splitlines():
        m = re.search(r"\s(sdt_oomsentry:\w+):\s+\([0-9a-f]+\)((?:\s+arg\d+=-?\d+)+)\s*$", line)
        if m and m.group(1) in by_event:
            hits[by_event[m.group(1)]].append(tuple(int(v) for v in re.findall(r"arg\d+=(-?\d+)", m.group(2))))
    return hits


def read_records(stream, records):
    for line in stream.read().splitlines() if stream else []:
        try:
            records.append(json.loads(line))
        except ValueError:
            pass


def check(failures, ok, what):
    say("  %s %s" % ("ok  " if ok else "FAIL", what))
    if not ok:
        failures.append(what)


def drill(tmp, perf):
    failures = []
    perf = [perf, "--buildid-dir", os.path.join(tmp, "buildid")]
    names = add_probes(perf)
    say("perf buildid-cache --add %s" % BINARY)
    say("perf probe -x %s --add 'sdt_oomsentry:*'  ->  %s" % (BINARY, ", ".join(sorted(names.values()))))
    cg = MemoryCgroup(demo.LIMIT, "oomsentry-test-drill-")
    procs = []
    records = []
    try:
        sim, url = demo.start_sim(cg, tmp)
        procs.append(sim)
        out_path = os.path.join(tmp, "daemon.jsonl")
        with open(out_path, "w") as out:
            daemon = subprocess.Popen([BINARY, "run", "--url", url, "--json", "--socket",
                                       os.path.join(tmp, "status.sock"), "--incident-dir",
                                       os.path.join(tmp, "incidents")] + demo.DAEMON_ARGS,
                                      stdout=out, stderr=subprocess.DEVNULL)
        procs.append(daemon)
        # perf follows the daemon's pid: other oomsentry binaries on the machine are other inodes, not probed
        data = os.path.join(tmp, "perf.data")
        rec = subprocess.Popen(perf + ["record", "-q", "-o", data, "-p", str(daemon.pid)] +
                               sum((["-e", names[p]] for p in PROBES), []),
                               stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "perf-record.log"), "w"))
        procs.append(rec)
        say("perf record -p %d -e %s" % (daemon.pid, " -e ".join(names[p] for p in PROBES)))
        deadline = time.time() + 30
        while not os.path.exists(os.path.join(tmp, "status.sock")):
            if time.time() > deadline or daemon.poll() is not None:
                raise CannotRun("oomsentry did not start (rc %s)" % daemon.poll())
            time.sleep(0.1)
        time.sleep(1.0)
        ids = demo.submit(url)
        done = demo.wait_done(url, ids, sim)
        # the last generation's record and probe follow its end within a poll
        time.sleep(1.0)
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=30)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=15)
        with open(out_path) as f:
            read_records(f, records)

        say()
        say("The scenario: %d of %d prompts finished, %d OOM kill(s) in the cgroup" % (
            sum(1 for v in done.values() if v == "success"), len(ids), cg.oom_kills()))
        check(failures, cg.oom_kills() == 0 and len(done) == len(ids), "prevented: every prompt done, no OOM kill")

        # 1. the journal: what was done, with the documented fields
        say()
        say("journalctl -t oomsentry OOMSENTRY_EVENT=action _PID=%d -o json" % daemon.pid)
        journal = []
        deadline = time.time() + 15
        want = [r for r in records if r["event"] == "action"]
        while time.time() < deadline:
            r = run(["journalctl", "--no-pager", "-o", "json", "-t", "oomsentry", "OOMSENTRY_EVENT=action",
                     "_PID=%d" % daemon.pid])
            journal = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
            if len(journal) >= len(want):
                break
            time.sleep(0.3)
        for j in journal[:6]:
            say("  %s" % j["MESSAGE"][:150])
        check(failures, want and len(journal) == len(want),
              "the journal holds each of the %d action records (%d found)" % (len(want), len(journal)))

        # 2. the incident report
        inc = [r for r in records if r["event"] == "incident"]
        check(failures, bool(inc), "an incident record names the report")
        if inc:
            say()
            say("oomsentry report %s" % inc[-1]["path"])
            rep = run([BINARY, "report", inc[-1]["path"]])
            for line in rep.stdout.splitlines()[:12]:
                say("  " + line)
            check(failures, rep.returncode == 0 and "outcome:   prevented" in rep.stdout, "the report says prevented")

        # 3. perf: each probe against the record written with it
        say()
        say("perf script -i perf.data")
        script = run(perf + ["script", "-i", data])
        hits = parse_perf_script(script.stdout, names)
        for p in PROBES:
            for h in hits[p][:4]:
                say("  %s%s" % (p, h))
        gens = [(r["generation"], r["peak_bytes"], r["residual_bytes"]) for r in records if r["event"] == "generation"]
        # an interrupted and requeued prompt is two generations: at least one per prompt
        check(failures, len(gens) >= len(ids) and sorted(hits["generation"]) == sorted(gens),
              "generation(seq, peak_bytes, residual_bytes) fired once per generation record, with its numbers "
              "(%d probes, %d records)" % (len(hits["generation"]), len(gens)))
        acts = [(RUNGS[r["action"]], r["rss_bytes"], r["limit_bytes"]) for r in records
                if r["event"] == "action" and r.get("result") in ("done", "failed") and r["action"] in RUNGS]
        check(failures, acts and sorted(hits["action"]) == sorted(acts),
              "action(rung, usage_bytes, limit_bytes) fired once per rung taken, with its numbers "
              "(%d probes, %d records)" % (len(hits["action"]), len(acts)))
        leaks = [(r["leak_bytes_per_generation"], r["generations_left"]) for r in records
                 if r["event"] == "leak_suspected"]
        check(failures, leaks and sorted(hits["leak"]) == sorted(leaks),
              "leak(leak_bytes_per_generation, generations_left) fired once per leak_suspected record, with its "
              "numbers (%d probes, %d records)" % (len(hits["leak"]), len(leaks)))
        return failures
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.kill()
                p.wait()
        cg.destroy()
        # one --del per event: perf takes "a,b" as a single (unknown) name and deletes nothing
        r = run(perf + ["probe"] + sum((["--del", n] for n in names.values()), []))
        if r.returncode != 0:
            say("incident-drill: perf probe --del failed, remove by hand: %s" % r.stderr.strip())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", help="keep perf.data, the daemon's records and the incident report in this directory")
    args = ap.parse_args()
    try:
        if os.geteuid() != 0:
            raise CannotRun("run as root: perf probe, BPF and a memory cgroup")
        perf = shutil.which("perf")
        if not perf:
            raise CannotRun("perf is missing (apt-get install linux-perf)")
        if not os.access(BINARY, os.X_OK):
            raise CannotRun("build oomsentry first (make)")
        if not journald_listening():
            raise CannotRun("no journald listens on %s" % JOURNAL_SOCKET)
        with open(LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if args.keep:
                os.makedirs(args.keep, exist_ok=True)
                failures = drill(args.keep, perf)
            else:
                with tempfile.TemporaryDirectory(prefix="oomsentry-drill-") as tmp:
                    failures = drill(tmp, perf)
    except CannotRun as e:
        say("incident-drill: cannot run: %s" % e)
        return 2
    say()
    say("incident-drill: %s" % ("every check holds" if not failures else "%d check(s) FAILED" % len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
