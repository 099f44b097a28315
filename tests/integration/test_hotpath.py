"""Issue 11: the rss_stat hot path's track_filter (events.h) stays exact. Untracked faults skip the tracked map when
their slot counts 0, so a slot that undercounts would hide a tracked process from the RSS probe, and one that
overcounts after the process is gone would cost every later fault in that slot a lookup."""
import json
import os
import shutil
import subprocess
import time

from conftest import PYTHON, skip_or_fail

# forks tracked children that exec, fork grandchildren and exit, in waves: insertions and deletions by the BPF side
CHURN = r"""
import os, sys
for wave in range(int(sys.argv[1])):
    kids = []
    for i in range(8):
        pid = os.fork()
        if pid == 0:
            if i % 2:
                os.execv(sys.executable, [sys.executable, "-c", "import os; os.fork() or os._exit(0); os.wait()"])
            os._exit(0)
        kids.append(pid)
    for pid in kids:
        os.waitpid(pid, 0)
"""


def bpftool_json(*args):
    return json.loads(subprocess.run(["bpftool", "-j"] + list(args), check=True, capture_output=True, text=True).stdout)


def daemon_maps(pid):
    """name -> id of the BPF maps the daemon holds open."""
    ids = set()
    for fd in os.listdir("/proc/%d/fdinfo" % pid):
        try:
            for line in open("/proc/%d/fdinfo/%s" % (pid, fd)):
                if line.startswith("map_id:"):
                    ids.add(int(line.split()[1]))
        except OSError:
            pass
    return {bpftool_json("map", "show", "id", str(i))["name"]: i for i in ids}


def map_ids(pid):
    maps = daemon_maps(pid)
    bss = [i for n, i in maps.items() if n.endswith(".bss")]
    assert len(bss) == 1 and "tracked" in maps, maps
    return bss[0], maps["tracked"]


def filter_slots(bss):
    dump = bpftool_json("map", "dump", "id", str(bss))
    return next(v["track_filter"] for v in dump[0]["formatted"]["value"][".bss"] if "track_filter" in v)


def tracked_pids(tracked):
    return [e["formatted"]["key"] for e in bpftool_json("map", "dump", "id", str(tracked))]


def counts(tracked, n):
    want = [0] * n
    for tgid in tracked:
        want[tgid % n] += 1
    return want


def mismatches(pid):
    """Slots where track_filter disagrees with the tracked map. The dumps are not one snapshot, and the machine's
    python processes fork and exit meanwhile: the map is dumped before and after the filter, and only slots whose
    count did not change across that window are compared. Looks again until none disagree (at most 10 s)."""
    bss, tracked = map_ids(pid)
    deadline = time.time() + 10
    while True:
        before = counts(tracked_pids(tracked), 32768)
        slots = filter_slots(bss)
        after_pids = tracked_pids(tracked)
        after = counts(after_pids, len(slots))
        bad = [(i, slots[i], after[i]) for i in range(len(slots)) if before[i] == after[i] and slots[i] != after[i]]
        if not bad or time.time() > deadline:
            return bad, after_pids
        time.sleep(0.2)


def test_track_filter_counts_the_tracked_map(daemon_factory, cgroup_factory, procs):
    if not shutil.which("bpftool"):
        skip_or_fail("needs bpftool to read the daemon's maps (make deps installs it)")
    # only what runs in this cgroup is tracked, so that the machine's other processes do not churn the map
    cg = cgroup_factory(512 << 20)
    seeded = procs.start([PYTHON, "-c", "import time; time.sleep(600)"], preexec_fn=cg.preexec())
    d = daemon_factory("observe", ["--comm-prefixes", "nomatch", "--cgroups", cg.path])
    # the /proc scan seeded it through user space
    bad, tracked = mismatches(d.proc.pid)
    assert seeded.pid in tracked and not bad, (bad, tracked)
    churn = procs.start([PYTHON, "-c", CHURN, "6"], preexec_fn=cg.preexec())
    assert churn.wait(timeout=120) == 0
    d.wait_for(lambda r: r["event"] == "exit" and r.get("pid") == churn.pid, what="exit of the churn")
    # the children the churn forked were tracked (through the filter) and are gone again
    forked = d.find(lambda r: r["event"] == "fork" and r.get("pid") == churn.pid)
    assert len(forked) >= 6 * 8, len(forked)
    bad, tracked = mismatches(d.proc.pid)
    assert not bad, bad
    assert churn.pid not in tracked
    # and user space's own deletion: the seeded process killed, its entry closed
    seeded.kill()
    seeded.wait()
    d.wait_for(lambda r: r["event"] == "exit" and r.get("pid") == seeded.pid, what="exit of the seeded process")
    bad, tracked = mismatches(d.proc.pid)
    assert not bad and seeded.pid not in tracked, (bad, tracked)
