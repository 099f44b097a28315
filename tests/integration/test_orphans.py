"""Issue 6: orphaned Python processes, the startup scan, crash loops."""
import json
import os
import signal
import subprocess
import time

from conftest import BINARY, PYTHON, free_port

MiB = 1 << 20


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def sim_workers(sim_pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(") ", 1)[1].split()[1])
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    if ppid == sim_pid and b"spawn_main" in f.read():
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def vm_rss(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))
    except (OSError, StopIteration, ValueError):
        return 0


def wait_until(fn, timeout=10, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def kill_pids(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_orphans_of_a_killed_server_are_found_and_reaped(daemon_factory, cgroup_factory, sim_factory, procs, tmp_path):
    cg = cgroup_factory(2048 * MiB)
    sim = sim_factory(["--workers", "2", "--worker-mb", "64", "--model-mb", "0"], cgroup=cg)
    workers = wait_until(lambda: len(sim_workers(sim.proc.pid)) == 2 and sim_workers(sim.proc.pid), what="workers")
    # the same kind of accident to processes outside the scope: a sleep (not python) inside the cgroup and a
    # python outside it, both orphaned by a parent that is SIGKILLed
    bystander_parent = procs.start(["/bin/sh", "-c", "sleep 300 & echo $!; %s -c 'import time; time.sleep(300)' & "
                                    "echo $!; wait" % PYTHON], stdout=subprocess.PIPE, text=True)
    bystanders = [int(bystander_parent.stdout.readline()) for _ in range(2)]
    with open(os.path.join(cg.path, "cgroup.procs"), "w") as f:
        f.write(str(bystanders[0]))  # the sleep joins the scope's cgroup; the python stays outside
    try:
        scope = ["--url", sim.url, "--cgroups", cg.path, "--orphan-min-age", "1s"]
        d = daemon_factory("observe", scope)
        d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid, what="server found")
        wait_until(lambda: all(os.path.exists("/proc/%d" % w) for w in workers), what="workers up")
        # a slow machine (a TCG guest of make vmtest) is still filling them at this point
        wait_until(lambda: all(vm_rss(w) > 64 * MiB for w in workers), timeout=60, what="workers holding 64 MiB")
        time.sleep(1.2)  # older than orphan_min_age
        n = len(d.records)
        bystander_parent.kill()
        sim.proc.kill()
        t0 = time.time()
        found = {}
        for w in workers:
            r = d.wait_for(lambda r, w=w: r["event"] == "orphan" and r.get("pid") == w, since=n, timeout=5,
                           what="orphan record for worker %d" % w)
            found[w] = time.time() - t0
            assert r["orphan_reason"] == "parent-died", r
            assert 60 * MiB < r["rss_bytes"] < 100 * MiB, r
            assert r["cgroup"] == cg.path
        assert max(found.values()) < 1.0, "orphans must be reported within one second: %s" % found
        assert not d.find(lambda r: r["event"] == "orphan" and r.get("pid") in bystanders)
        assert all(alive(w) for w in workers), "observe mode must not act"

        # a fresh `oomsentry scan --reap` has not seen the server die: the lineage the daemon persisted proves whose
        # workers these are
        out = subprocess.run([BINARY, "scan", "--reap", "--json", "--journal=no", "--orphan-grace", "2s",
                              "--socket", str(tmp_path / "scan.sock"), "--state-dir", str(tmp_path / "state")] + scope,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        recs = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
        reaped = {r["pid"]: r for r in recs if r["event"] == "action" and r.get("action") == "reap_orphan"}
        orphans = {r["pid"]: r for r in recs if r["event"] == "orphan"}
        assert set(workers) <= set(reaped), recs
        # the only other orphan of the dead server is its multiprocessing resource tracker
        assert all("multiprocessing" in orphans[p]["cmdline"] for p in set(reaped) - set(workers)), orphans
        for w in workers:
            assert reaped[w]["result"] in ("exited-after-sigterm", "killed"), reaped[w]
            assert reaped[w]["freed_bytes"] > 60 * MiB, reaped[w]
        total = [r for r in recs if r["event"] == "action" and r.get("action") == "reap_orphans"]
        assert total and total[0]["freed_bytes"] >= 2 * 60 * MiB
        wait_until(lambda: not any(alive(w) for w in workers), what="workers gone")
        assert all(alive(b) for b in bystanders), "processes outside the scope are never touched"
    finally:
        kill_pids(workers + bystanders)


def test_startup_scan_finds_older_instance_and_port_holder(daemon_factory, sim_factory, procs, tmp_path):
    port = free_port()
    # an older server of the same install on the same port, still around (another address of the same port)
    old = sim_factory(["--listen", "127.0.0.2", "--model-mb", "0"], port=port)
    time.sleep(1.2)
    # a python holding the ComfyUI port that is not a server; started last, so "the newest listener" would pick
    # it: the server is the one that serves the URL's address
    live = sim_factory(["--model-mb", "0"], port=port)
    time.sleep(0.3)
    holder = procs.start([PYTHON, "-c", "import socket, time; s = socket.socket(); "
                          "s.bind(('127.0.0.3', %d)); s.listen(); time.sleep(300)" % port])
    time.sleep(1.2)
    d = daemon_factory("observe", ["--url", live.url, "--orphan-min-age", "1s"])
    server = d.wait_for(lambda r: r["event"] == "comfy" and "server is pid" in r["message"], what="server")
    assert server["pid"] == live.proc.pid
    # both listen on other addresses of the port than the URL's: other servers as far as anyone can prove, so they
    # are reported and never reaped (docs/security.md)
    o = d.wait_for(lambda r: r["event"] == "orphan" and r.get("pid") == old.proc.pid, what="older instance")
    assert o["orphan_reason"] == "older-instance" and o["verdict"] == "suspect", o
    assert "another address" in o["reason"], o
    h = d.wait_for(lambda r: r["event"] == "orphan" and r.get("pid") == holder.pid, what="port holder")
    assert h["orphan_reason"] == "port-holder" and h["verdict"] == "suspect", h
    assert not d.find(lambda r: r["event"] == "orphan" and r.get("pid") == live.proc.pid)
    assert alive(old.proc.pid) and alive(holder.pid) and alive(live.proc.pid)


def test_crash_loop_is_one_record_with_each_cause(daemon_factory, cgroup_factory, sim_factory):
    cg = cgroup_factory(512 * MiB)
    sim = sim_factory(["--model-mb", "0", "--peak-mb", "900", "--leak-mb", "0", "--steps", "4", "--step-ms", "50"],
                      cgroup=cg, supervised=True)
    d = daemon_factory("observe", ["--url", sim.url, "--crashloop-threshold", "5", "--crashloop-window", "30s",
                                   "--poll-interval", "100ms"])
    causes = []
    t_start = time.time()
    for how in ("SIGKILL", "SIGSEGV", "oom", "SIGKILL", "SIGABRT"):
        server = d.wait_for(lambda r: r["event"] == "comfy" and "server is pid" in r["message"]
                            and r["pid"] not in [c[0] for c in causes], what="server %d" % (len(causes) + 1))
        pid = server["pid"]
        if how == "oom":
            sim.wait_ready()
            sim.submit(1)  # 900 MiB in a 512 MiB cgroup: the kernel kills the server
        else:
            os.kill(pid, getattr(signal, how))
        d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == pid and "server pid" in r["message"],
                   what="death of server %d" % pid)
        causes.append((pid, how))
    assert time.time() - t_start < 30
    loops = d.wait_for(lambda r: r["event"] == "crash_loop", timeout=5, what="crash_loop record") and \
        d.find(lambda r: r["event"] == "crash_loop")
    assert len(loops) == 1, loops
    text = loops[0]["causes"]
    for pid, how in causes:
        expect = {"SIGKILL": "killed by signal 9 (SIGKILL)", "SIGSEGV": "killed by signal 11 (SIGSEGV)",
                  "SIGABRT": "killed by signal 6 (SIGABRT)", "oom": "killed by the OOM killer"}[how]
        assert "pid %d %s" % (pid, expect) in text, (pid, how, text)
    assert loops[0]["deaths"] == 5
