"""Issue 6: as a pod sidecar oomsentry lives in a pid namespace: every pid it reports is that namespace's."""
import json
import os
import subprocess


from conftest import PYTHON, skip_or_fail

MiB = 1 << 20
DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ns_driver.py")


def run_in_pidns(mode, cg, tmp_path):
    if subprocess.run(["unshare", "--help"], capture_output=True).returncode != 0:
        skip_or_fail("no unshare (util-linux)")
    out = tmp_path / ("%s.json" % mode)
    # what `unshare -p -f --mount-proc` does, spelled out: --mount-proc makes "/" private first, which fails where
    # "/" is no mount point (a chroot); making /proc private is enough to keep the new proc mount inside
    mount_proc = 'mount --make-rprivate /proc && mount -t proc proc /proc && exec "$@"'
    r = subprocess.run(["unshare", "-p", "-f", "-m", "--propagation", "unchanged", "/bin/sh", "-c", mount_proc, "sh",
                        PYTHON, DRIVER, mode, cg.path, str(out), str(tmp_path)],
                       capture_output=True, text=True, timeout=180)
    assert out.exists(), (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    res = json.loads(out.read_text())
    assert res.get("ok"), (res.get("error"), [x.get("message") for x in res.get("records", [])][-30:])
    return res


def test_oom_attribution_inside_a_pid_namespace(privileged, cgroup_factory, tmp_path):
    cg = cgroup_factory(192 * MiB)
    res = run_in_pidns("oom", cg, tmp_path)
    assert res["rc"] == -9
    assert "import sys, time, mmap" in res["cmdline"], "the namespace's /proc names the allocator by that pid"
    v, e = res["victim"], res["exit"]
    # the driver is pid 1 of the namespace: its children have small pids there, unlike on the host
    assert v["pid"] == res["pid"] and res["pid"] < 1000
    assert v["cgroup"] == cg.path
    assert e["cause"] == "oom" and e["reason"] == "killed by the OOM killer"
    # nothing from outside the namespace is visible: every pid reported belongs to it
    pids = {r["pid"] for r in res["records"] if "pid" in r}
    assert pids and max(pids) < 1000, sorted(pids)[-5:]
    # the rss_stat hot path finds the allocator by its pid in the namespace (bpf_get_ns_current_pid_tgid, and the
    # track_filter slot of that pid): its climb to the 192 MiB limit comes in 32 MiB steps
    steps = [r["rss_bytes"] for r in res["records"] if r["event"] == "rss" and r.get("pid") == res["pid"]]
    assert len([x for x in steps if x >= 32 * MiB]) >= 3, steps


def test_orphans_inside_a_pid_namespace(privileged, cgroup_factory, tmp_path):
    cg = cgroup_factory(1024 * MiB)
    res = run_in_pidns("orphans", cg, tmp_path)
    assert len(res["workers"]) == 2
    for w, o in zip(res["workers"], res["orphans"]):
        assert o["pid"] == w and w < 1000
        assert o["orphan_reason"] == "parent-died"
        # reparented to the namespace's init (the driver, pid 1), as the namespace's /proc says
        assert o["ppid"] == 1
