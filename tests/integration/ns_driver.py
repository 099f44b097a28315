"""Runs inside `unshare -p -f --mount-proc`: oomsentry and its targets in a new pid namespace.

Usage: ns_driver.py oom|orphans CGROUP_DIR OUT_JSON TMPDIR
Writes what it saw (pids as numbered in this namespace) and the daemon's records to OUT_JSON.
"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conftest as c  # noqa: E402

MiB = 1 << 20


class ExistingCgroup(c.Cgroup):
    """The cgroup the outer test made; this side only puts processes in it."""

    def __init__(self, path):
        self.path = path


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().replace(b"\0", b" ").decode()


def oom(cg, tmp, out):
    procs = c.Procs()
    d = c.Daemon(tmp, "observe", ["--rss-step", "32M"])
    try:
        p = procs.start([c.PYTHON, "-c", c.ALLOCATOR, "16", "0.02"], preexec_fn=cg.preexec())
        seen = cmdline(p.pid)  # this namespace's /proc knows the pid
        rc = p.wait(timeout=60)
        victim = d.wait_for(lambda r: r["event"] == "oom_victim" and r.get("pid") == p.pid, what="victim")
        ex = d.wait_for(lambda r: r["event"] == "exit" and r.get("pid") == p.pid, what="exit")
        out.update(pid=p.pid, rc=rc, cmdline=seen, victim=victim, exit=ex, mypid=os.getpid())
    finally:
        d.stop()
        procs.cleanup()
        out["records"] = d.records


def orphans(cg, tmp, out):
    procs = c.Procs()
    sim = c.Sim(procs, tmp, c.free_port(), ["--workers", "2", "--worker-mb", "32", "--model-mb", "0"], cg)
    d = c.Daemon(tmp, "observe", ["--url", sim.url, "--cgroups", cg.path, "--orphan-min-age", "1s"])
    try:
        d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid, what="server")
        deadline = time.time() + 10
        workers = []
        while time.time() < deadline and len(workers) < 2:
            workers = [int(x) for x in os.listdir("/proc") if x.isdigit() and "spawn_main" in cmdline(int(x))
                       and int(open("/proc/%s/stat" % x).read().rsplit(") ", 1)[1].split()[1]) == sim.proc.pid]
            time.sleep(0.1)
        time.sleep(1.2)
        sim.proc.kill()
        found = [d.wait_for(lambda r, w=w: r["event"] == "orphan" and r.get("pid") == w, what="orphan %d" % w)
                 for w in workers]
        out.update(server=sim.proc.pid, workers=workers, orphans=found)
    finally:
        d.stop()
        for w in out.get("workers", []):
            try:
                os.kill(w, signal.SIGKILL)
            except ProcessLookupError:
                pass
        procs.cleanup()
        out["records"] = d.records


def main():
    mode, cgdir, out_path, tmp = sys.argv[1:5]
    assert os.getpid() == 1, "run me as the first process of a new pid namespace"
    out = {}
    try:
        {"oom": oom, "orphans": orphans}[mode](ExistingCgroup(cgdir), tmp, out)
        out["ok"] = True
    except Exception as e:  # the outer test reports it
        out["error"] = repr(e)
    with open(out_path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
