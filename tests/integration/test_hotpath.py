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


# grows its RSS in 8 MiB steps and holds it: faults enough for the rss_stat path to copy it into tracked_hot
GROW = r"""
import sys, time
keep = []
for i in range(int(sys.argv[1])):
    keep.append(bytearray(8 << 20))
    time.sleep(0.02)
time.sleep(600)
"""


def hot_copies(pid):
    """tgid -> slot of the tracked_hot copies (events.h, OS_TRACKED_HOT_SLOTS) the daemon's kernel side holds."""
    maps = daemon_maps(pid)
    assert "tracked_hot" in maps, maps
    out = {}
    for e in bpftool_json("map", "dump", "id", str(maps["tracked_hot"])):
        v = e["formatted"]["value"]
        if v["tgid"]:
            out[v["tgid"]] = e["formatted"]["key"]
    return out


def test_hot_copies_belong_to_tracked_processes(daemon_factory, cgroup_factory, procs):
    """The rss_stat path runs a tracked process from its copy in tracked_hot; a copy that outlived its process's
    tracking would let a later process with the same slot and tgid run on stale state. After a churn of tracked
    processes that fault and exit, every copy belongs to a process still tracked, and the RSS events still come."""
    if not shutil.which("bpftool"):
        skip_or_fail("needs bpftool to read the daemon's maps (make deps installs it)")
    cg = cgroup_factory(512 << 20)
    d = daemon_factory("observe", ["--comm-prefixes", "nomatch", "--cgroups", cg.path, "--rss-step", "16M"])
    grower = procs.start([PYTHON, "-c", GROW, "16"], preexec_fn=cg.preexec())
    d.wait_for(lambda r: r["event"] == "exec" and r.get("pid") == grower.pid, what="exec of the grower")
    # 128 MiB in 8 MiB steps at a 16 MiB event step: at least 6 RSS events, from the copy once it holds its slot
    d.wait_for(lambda r: r["event"] == "rss" and r.get("pid") == grower.pid and r.get("rss_bytes", 0) >= 112 << 20,
               what="the grower's RSS events up to 112 MiB", timeout=30)
    assert len(d.find(lambda r: r["event"] == "rss" and r.get("pid") == grower.pid)) >= 6
    _, tracked = map_ids(d.proc.pid)
    copies = hot_copies(d.proc.pid)
    assert copies.get(grower.pid) == grower.pid % 4096, copies
    churn = procs.start([PYTHON, "-c", CHURN, "6"], preexec_fn=cg.preexec())
    assert churn.wait(timeout=120) == 0
    d.wait_for(lambda r: r["event"] == "exit" and r.get("pid") == churn.pid, what="exit of the churn")
    grower.kill()
    grower.wait()
    d.wait_for(lambda r: r["event"] == "exit" and r.get("pid") == grower.pid, what="exit of the grower")
    # the churn's python children faulted (they were copied in) and exited: none of them, nor the grower, is left
    stale = {t: s for t, s in hot_copies(d.proc.pid).items() if t not in set(tracked_pids(tracked))}
    assert not stale, stale
