"""Issue 12: an error in the glue is handled and journaled once where it is handled. A server whose memory cgroup
goes away under the daemon (moved out, the cgroup removed) is measured by its process tree from then on, and the
journal hears of it once, not at every sample."""
import time

from conftest import Cgroup, Sim, free_port
from test_prevention import FAST

GiB = 1 << 30


def test_unreadable_cgroup_is_said_once_and_measuring_goes_on(privileged, procs, daemon_factory, tmp_path):
    first, second = Cgroup(GiB), Cgroup(GiB)
    try:
        sim = Sim(procs, tmp_path, free_port(), (), first)
        d = daemon_factory("observe", ["--url", sim.url] + FAST)
        d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid and
                   first.path in r.get("message", ""), what="server found in its cgroup")
        second.write("cgroup.procs", str(sim.proc.pid))
        first.destroy()
        cant = lambda r: r["event"] == "comfy" and "cannot read memory cgroup" in r.get("message", "")
        d.wait_for(cant, timeout=10, what="the unreadable cgroup said")
        time.sleep(3)  # 15 samples at 200 ms: each one fails to read the cgroup again
        said = d.find(cant)
        assert len(said) == 1, [r["message"] for r in said]
        assert said[0]["cgroup"] == first.path and said[0]["errno"] > 0, said[0]
        assert sim.proc.poll() is None
    finally:
        second.destroy()
        first.destroy()
