"""Issue 14: the RSS event step tightens as the headroom under the limit shrinks (core/rsstep.h): coarse steps far
from the limit, fine ones near it, so that the policy sees a fast climb at the brink in fine resolution."""
import signal

MiB = 1 << 20


def test_rss_steps_finer_near_the_limit(daemon_factory, cgroup_factory, sim_factory):
    limit = 1024 * MiB
    cg = cgroup_factory(limit)
    # a server that grows by itself at a steady pace while idle, in ~3 MiB chunks touched page by page
    sim = sim_factory(["--model-mb", "0", "--idle-leak-mb-per-s", "60"], cgroup=cg)
    # observe: nothing acts, the server climbs to the limit and the kernel kills it
    d = daemon_factory("observe", ["--url", sim.url, "--rss-step", "64M"])
    d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid, what="server found")
    rc = sim.proc.wait(timeout=120)
    assert rc == -signal.SIGKILL, "the growing server should end OOM-killed, rc=%s" % rc
    d.wait_for(lambda r: r["event"] == "exit" and r.get("pid") == sim.proc.pid, what="exit of the server")
    rss = [r["rss_bytes"] for r in d.find(lambda r: r["event"] == "rss" and r.get("pid") == sim.proc.pid)]
    pairs = list(zip(rss, rss[1:]))
    assert len(pairs) >= 8, rss
    # far from the limit (more than 8 configured steps of headroom, with 64 MiB to spare for what the cgroup holds
    # beside the server's RSS): the configured step
    far = [b - a for a, b in pairs if b > a and a < limit - 8 * 64 * MiB - 64 * MiB]
    assert far, rss
    assert all(d >= 64 * MiB for d in far), [x // MiB for x in far]
    # in the last 128 MiB (headroom/8 <= 16 MiB): steps of 16 MiB at most (the server allocates ~3 MiB at a time
    # and the kernel's per-CPU counters lag by a little, hence the slack), and several of them
    near = [b - a for a, b in pairs if b > a and a >= limit - 128 * MiB]
    assert len(near) >= 3, [x // MiB for x in rss]
    assert all(d <= 20 * MiB for d in near), [x // MiB for x in near]
    assert min(near) < 8 * MiB, [x // MiB for x in near]
