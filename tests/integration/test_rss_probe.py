"""Issue 11: in run mode the rss_stat probe, which runs on every page fault of every process, is attached only while
an instance needs it (core/rssarm.h): a known server that is busy, or whose cgroup's usage is at or above the arm
line (the warn line less 4 GiB, one second of the fastest credible growth). Whether it is attached is read from the
kernel's side, the daemon's own descriptors (a raw tracepoint link's fdinfo names its tracepoint), not from what the
daemon says of itself."""
import glob
import subprocess
import sys
import time

from conftest import BINARY

GiB = 1 << 30
MiB = 1 << 20
# 6 GiB: the warn line (0.8) is 4.8 GiB, the arm line 4.8 - 4 = 0.8 GiB, notified at 768 MiB (256 MiB grains)
LIMIT = 6 * GiB

# holds argv[1] MiB, touched, until killed; refuses to run outside its limited cgroup
HOLD = r"""
import mmap, sys, time
if "oomsentry-test" not in open("/proc/self/cgroup").read():
    sys.exit(97)
m = mmap.mmap(-1, int(sys.argv[1]) << 20)
for off in range(0, len(m), 4096):
    m[off] = 1
print("held", flush=True)
time.sleep(600)
"""


def rss_links(pid):
    n = 0
    for f in glob.glob("/proc/%d/fdinfo/*" % pid):
        try:
            with open(f) as fh:
                text = fh.read()
        except OSError:
            continue
        if "tp_name:\trss_stat\n" in text:
            n += 1
    return n


def wait_links(d, want, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if rss_links(d.proc.pid) == want:
            return time.time()
        time.sleep(0.05)
    raise AssertionError("%s: %d rss_stat links, want %d; status:\n%s\nstderr:\n%s" % (
        what, rss_links(d.proc.pid), want, status(d), d.stderr()))


def status(d):
    return subprocess.run([BINARY, "status", "--socket", d.proc.args[d.proc.args.index("--socket") + 1]],
                          capture_output=True, text=True, timeout=10).stdout


def test_rss_probe_attached_only_while_a_server_needs_it(daemon_factory, cgroup_factory, sim_factory, procs):
    cg = cgroup_factory(LIMIT)
    sim = sim_factory(["--model-mb", "0", "--peak-mb", "200", "--leak-mb", "0", "--steps", "30", "--step-ms", "100"],
                      cgroup=cg)
    d = daemon_factory("run", ["--url", sim.url])
    d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid, what="server found")
    # idle, 6 GiB away: off (after the 10 s linger of the start's own activity at most)
    wait_links(d, 0, 30, "idle and far from the limit")
    assert "rss probe: detached" in status(d)

    # a generation: on for it; its RSS steps are seen (the peak is 200 MiB over 64 MiB steps)
    at = len(d.records)
    ids = sim.submit(1)
    t0 = time.time()
    wait_links(d, 1, 5, "a generation running")
    sim.wait_all_done(ids, timeout=60)
    steps = d.find(lambda r: r["event"] == "rss" and r.get("pid") == sim.proc.pid)
    assert any(d.records.index(r) >= at for r in steps), "no RSS step of the server during its generation"
    # off again once idle, after the linger
    t1 = wait_links(d, 0, 40, "idle again after the generation")
    assert t1 - t0 >= 10, "detached %.1f s after the generation began: before its linger" % (t1 - t0)

    # something else in the cgroup climbs past the arm line while the server idles: on (cgroup v1: the kernel's
    # notification; v2: the read each second)
    hold = procs.start([sys.executable, "-c", HOLD, "1536"], preexec_fn=cg.preexec(), stdout=subprocess.PIPE,
                       text=True)
    assert hold.stdout.readline().strip() == "held", "the holder did not run in its cgroup (rc %s)" % hold.poll()
    wait_links(d, 1, 5, "usage above the arm line")
    # and off when it is gone
    hold.kill()
    hold.wait()
    wait_links(d, 0, 40, "usage back under the arm line")
    assert "attached " in status(d)

    # nothing acted: no action record in all this
    assert not d.find(lambda r: r["event"] == "action"), [r["message"] for r in d.find(lambda r: r["event"] == "action")]


def arm_line(limit):
    """core/rssarm.c at the default warn line (0.8) and growth floor (4 GiB/s over 1 s), in 256 MiB grains"""
    line = 0.8 * limit - 4 * GiB
    return int(line) // (256 * MiB) * (256 * MiB) if line > 0 else 0


def test_without_a_cgroup_the_line_is_against_memtotal(daemon_factory, sim_factory):
    # a server in no limited cgroup: its usage is its tree's RSS, its limit MemTotal, and while the probe is off the
    # daemon reads the tree from /proc each second
    memtotal = next(int(l.split()[1]) * 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal:"))
    sim = sim_factory(["--model-mb", "0", "--peak-mb", "200", "--leak-mb", "0", "--steps", "30", "--step-ms", "100"])
    d = daemon_factory("run", ["--url", sim.url])
    d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid, what="server found")
    if arm_line(memtotal) < 1 * GiB:
        # a small machine (a test VM): every usage is near, the probe stays on
        time.sleep(12)
        assert rss_links(d.proc.pid) == 1, status(d)
        return
    wait_links(d, 0, 30, "idle and far from MemTotal")
    ids = sim.submit(1)
    wait_links(d, 1, 5, "a generation running")
    sim.wait_all_done(ids, timeout=60)


def test_observe_and_opt_out_keep_the_probe_attached(daemon_factory, cgroup_factory, sim_factory):
    cg = cgroup_factory(LIMIT)
    sim = sim_factory(["--model-mb", "0", "--leak-mb", "0"], cgroup=cg)
    for mode, args in (("observe", []), ("run", ["--no-rss-probe-on-demand"])):
        d = daemon_factory(mode, ["--url", sim.url] + args)
        d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid, what="server found")
        # as long as the first test's linger and more: still attached
        time.sleep(12)
        assert rss_links(d.proc.pid) == 1, (mode, args, status(d))
        d.stop()
