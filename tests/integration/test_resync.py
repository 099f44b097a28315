"""Dropped ring-buffer events: the process table is resynced from /proc.

The daemon runs with a one-page ring buffer and is stopped (SIGSTOP) while a flood of forks fills it, so that the
kernel drops the events that follow: the exec of a process started then, and the exit of one that ends then.
After SIGCONT the daemon must see its table out of step, track the new process, close the ended one, and say so in
one record.
"""
import os
import signal
import subprocess
import time

from conftest import BINARY, PYTHON

# a name no other process on this shared machine has: only our processes are tracked, so the ring's contents
# are ours
PREFIX = "osres"
FORKER = r"""
import os, sys
for _ in range(int(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
"""


def named(tmp_path, name, target):
    """A symlink whose basename becomes the process's comm at exec."""
    path = tmp_path / name
    os.symlink(target, path)
    return str(path)


def status_table(tmp_path):
    out = subprocess.run([BINARY, "status", "--socket", str(tmp_path / "status.sock")], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    return out.stdout


def table_pids(text):
    """The pids of the status table's process lines."""
    pids = set()
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 3 and f[0].isdigit() and f[1].isdigit():
            pids.add(int(f[0]))
    return pids


def test_drops_resync_table(daemon_factory, procs, tmp_path):
    sleeper = named(tmp_path, PREFIX + "-sleep", "/bin/sleep")
    forker = named(tmp_path, PREFIX + "-forker", PYTHON)
    d = daemon_factory("observe", ["--comm-prefixes", PREFIX, "--ring-buffer-size", "4K"])

    old = procs.start([sleeper, "600"])
    d.wait_for(lambda r: r["event"] == "exec" and r.get("pid") == old.pid, what="the exec of the first process")
    assert old.pid in table_pids(status_table(tmp_path))
    since = len(d.records)

    d.proc.send_signal(signal.SIGSTOP)
    try:
        # 300 forks and 300 exits: far more than one page of events
        flood = subprocess.run([forker, "-c", FORKER, "300"], timeout=60)
        assert flood.returncode == 0
        new = procs.start([sleeper, "600"])
        old.kill()
        old.wait(timeout=10)
        # the kernel's tracked map is updated before the event is reserved: wait until it has seen both
        time.sleep(0.2)
    finally:
        d.proc.send_signal(signal.SIGCONT)

    rec = d.wait_for(lambda r: r["event"] == "daemon" and r.get("state") == "resync", since=since, timeout=30,
                     what="the resync record")
    assert int(rec["dropped"]) > 0
    assert int(rec["found"]) >= 1 and int(rec["gone"]) >= 1, rec
    found = d.wait_for(lambda r: r["event"] == "process" and r.get("pid") == new.pid, since=since,
                       what="the process started during the drops")
    assert found.get("source") == "resync"
    gone = d.wait_for(lambda r: r["event"] == "exit" and r.get("pid") == old.pid, since=since,
                      what="the exit of the process that ended during the drops")
    assert gone["cause"] == "unknown" and "dropped" in gone["reason"], gone
    # the events really were lost: neither came from the kernel
    assert not d.find(lambda r: r["event"] == "exec" and r.get("pid") == new.pid)
    assert not d.find(lambda r: r["event"] == "exit" and r.get("pid") == old.pid and r.get("cause") != "unknown")

    pids = table_pids(status_table(tmp_path))
    assert new.pid in pids and old.pid not in pids
    # one record per burst, however many resyncs it took
    time.sleep(1.5)
    assert len(d.find(lambda r: r["event"] == "daemon" and r.get("state") == "resync")) == 1


def test_no_drops_no_resync(daemon_factory, procs, tmp_path):
    """The same flood with the default ring buffer while the daemon runs: nothing is dropped, nothing resynced,
    and the events themselves tell the start and the end."""
    sleeper = named(tmp_path, PREFIX + "-sleep", "/bin/sleep")
    forker = named(tmp_path, PREFIX + "-forker", PYTHON)
    d = daemon_factory("observe", ["--comm-prefixes", PREFIX])

    old = procs.start([sleeper, "600"])
    d.wait_for(lambda r: r["event"] == "exec" and r.get("pid") == old.pid, what="the exec of the first process")
    assert subprocess.run([forker, "-c", FORKER, "300"], timeout=60).returncode == 0
    new = procs.start([sleeper, "600"])
    old.kill()
    old.wait(timeout=10)
    d.wait_for(lambda r: r["event"] == "exec" and r.get("pid") == new.pid, what="the exec event")
    d.wait_for(lambda r: r["event"] == "exit" and r.get("pid") == old.pid and r["cause"] == "signal",
               what="the exit event")
    time.sleep(0.5)
    assert not d.find(lambda r: r["event"] == "daemon" and r.get("state") == "resync")
