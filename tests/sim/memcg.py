"""A scratch memory cgroup for the demo, the integration tests and the benchmarks (standard library only).

cgroup v1 (the memory controller mounted at /sys/fs/cgroup/memory) or v2 (memory in cgroup.controllers). Only
cgroups this code created are ever written to, and destroy() kills nothing but the processes inside them.
"""
import os
import signal
import time
import uuid

V1_ROOT = "/sys/fs/cgroup/memory"
V2_ROOT = "/sys/fs/cgroup"


def v2_available():
    try:
        return "memory" in open(os.path.join(V2_ROOT, "cgroup.controllers")).read().split()
    except OSError:
        return False


def available():
    """Whether this machine has a memory cgroup controller to make scratch cgroups with (v1 or v2)."""
    return os.path.exists(os.path.join(V1_ROOT, "cgroup.procs")) or v2_available()


def enable_v2_memory(parent):
    """Children of `parent` get memory.max only with +memory in its cgroup.subtree_control. systemd enables it at
    the root; a machine without systemd (a container, a test VM) has to do it itself. The root cgroup may hold
    processes and still delegate, so this never has to move anything."""
    ctl = os.path.join(parent, "cgroup.subtree_control")
    if "memory" not in open(ctl).read().split():
        with open(ctl, "w") as fh:
            fh.write("+memory")


class MemoryCgroup:
    def __init__(self, limit_bytes, prefix="oomsentry-"):
        self.name = prefix + uuid.uuid4().hex[:10]
        if os.path.exists(os.path.join(V1_ROOT, "cgroup.procs")):
            self.v2, self.path = False, os.path.join(V1_ROOT, self.name)
        elif "memory" in open(os.path.join(V2_ROOT, "cgroup.controllers")).read().split():
            self.v2, self.path = True, os.path.join(V2_ROOT, self.name)
            enable_v2_memory(V2_ROOT)
        else:
            raise RuntimeError("no memory cgroup controller on this machine")
        os.mkdir(self.path)
        self.write("memory.max" if self.v2 else "memory.limit_in_bytes", str(limit_bytes))
        if not self.v2:
            # without swap accounting the limit is on RAM; reclaim must not swap the test's pages out
            try:
                self.write("memory.swappiness", "0")
            except OSError:
                pass

    def write(self, f, v):
        with open(os.path.join(self.path, f), "w") as fh:
            fh.write(v)

    def read(self, f):
        with open(os.path.join(self.path, f)) as fh:
            return fh.read()

    def oom_kills(self):
        for line in self.read("memory.events" if self.v2 else "memory.oom_control").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def usage(self):
        return int(self.read("memory.current" if self.v2 else "memory.usage_in_bytes"))

    def enter(self):
        """A preexec_fn that moves the child into this cgroup before it execs."""
        path = os.path.join(self.path, "cgroup.procs")

        def move():
            with open(path, "w") as fh:
                fh.write(str(os.getpid()))
        return move

    def pids(self):
        try:
            return [int(x) for x in self.read("cgroup.procs").split()]
        except OSError:
            return []

    def destroy(self):
        # only processes inside our own cgroup: we created every one of them
        for _ in range(50):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        for _ in range(50):
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.1)
