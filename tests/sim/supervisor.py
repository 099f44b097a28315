#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Restart-forever supervisor: a tiny stand-in for a container runtime / control panel.

Why it exists: oomsentry's "controlled restart" stops ComfyUI with SIGTERM and relies on whatever runs
ComfyUI to start it again, and the crash-loop tests need something that restarts a crashing ComfyUI the way
a container with `restart: always` does (seeds/003: "the container restarts every ~3 s").

    supervisor.py [--restart-delay 0.5] [--max-restarts N] [--log FILE] [--stop-timeout 10] [--subreaper] \
        -- CMD ARGS...

* runs CMD in its own process group (so a process-group SIGTERM aimed at CMD does not hit the supervisor);
* whenever CMD exits, for any reason, logs one line with its exit status and starts it again after
  --restart-delay seconds; after --max-restarts restarts it gives up and exits with CMD's status
  (exit code, or 128 + signal number);
* on SIGTERM/SIGINT/SIGHUP it forwards SIGTERM to CMD, waits up to --stop-timeout seconds (then SIGKILL),
  logs a line and exits 0;
* --subreaper makes it the reaper of orphaned descendants (PR_SET_CHILD_SUBREAPER), like a container's init:
  orphans of CMD are then reparented to the supervisor instead of pid 1 (reaped and logged when they exit).

Log lines (stderr, and appended to --log FILE):
    <iso time> supervisor[<pid>]: child pid=<pid> exited status=exit:<code> ...; restart <n> in <s>s
    <iso time> supervisor[<pid>]: child pid=<pid> killed status=signal:<n> (<NAME>) ...; restart <n> in <s>s
    <iso time> supervisor[<pid>]: ... giving up after <n> restarts
    <iso time> supervisor[<pid>]: stopping on <SIGNAME>: ... 
"""

import argparse
import ctypes
import os
import select
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


class Supervisor:
    def __init__(self, args, cmd):
        self.args = args
        self.cmd = cmd
        self.stop_signal = None
        self.child = None
        self.log_file = None
        if args.log:
            try:
                self.log_file = open(args.log, "a", buffering=1)
            except OSError as e:
                sys.stderr.write("supervisor: cannot open log %s: %s\n" % (args.log, e))
                sys.exit(2)

    def log(self, msg):
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime()) + ".%03d" % (time.time() % 1 * 1000)
        line = "%s supervisor[%d]: %s\n" % (ts, os.getpid(), msg)
        for f in (sys.stderr, self.log_file):
            if f is None:
                continue
            try:
                f.write(line)
                f.flush()
            except (OSError, ValueError):
                pass

    def on_signal(self, signo, _frame):
        if self.stop_signal is None:
            self.stop_signal = signo
        if self.child is not None:
            try:
                os.kill(self.child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    @staticmethod
    def describe(status):
        """(short, long, shell-style code) of a wait status."""
        if os.WIFEXITED(status):
            code = os.WEXITSTATUS(status)
            return "exit:%d" % code, "exited status=exit:%d" % code, code
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = "SIG%d" % sig
            core = " (core dumped)" if os.WCOREDUMP(status) else ""
            return ("signal:%d" % sig, "killed status=signal:%d (%s)%s" % (sig, name, core), 128 + sig)
        return "unknown:%d" % status, "ended status=unknown:%d" % status, 1

    def spawn(self):
        # Own process group: what oomsentry signals as "ComfyUI's group" must not include us.
        pid = os.posix_spawnp(self.cmd[0], self.cmd, os.environ, setpgroup=0)
        self.child = pid
        if self.stop_signal is not None:        # a signal arrived while we were spawning
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        return pid

    def reap_until(self, pid):
        """Wait for pid, reaping adopted orphans on the way (subreaper); SIGKILL after --stop-timeout once a
        stop was requested. Returns the wait status."""
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = None
        poller = select.poll()
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        kill_at = None
        killed = False
        try:
            while True:
                while True:
                    try:
                        got, status = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        got, status = 0, 0
                    if got == 0:
                        break
                    if got == pid:
                        return status
                    self.log("reaped orphan pid=%d %s" % (got, self.describe(status)[1]))
                if self.stop_signal is not None and kill_at is None:
                    kill_at = time.monotonic() + self.args.stop_timeout
                if kill_at is not None and not killed and time.monotonic() >= kill_at:
                    self.log("child pid=%d ignored SIGTERM for %gs: SIGKILL" % (pid, self.args.stop_timeout))
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    killed = True
                poller.poll(200)
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def sleep_interruptible(self, seconds):
        end = time.monotonic() + seconds
        while self.stop_signal is None:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    def run(self):
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, self.on_signal)
        if self.args.subreaper:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
                self.log("PR_SET_CHILD_SUBREAPER failed: %s" % os.strerror(ctypes.get_errno()))
        restarts = 0
        while True:
            try:
                pid = self.spawn()
            except OSError as e:
                self.log("cannot start %s: %s" % (self.cmd[0], e))
                return 127
            status = self.reap_until(pid)
            self.child = None
            short, long_, code = self.describe(status)
            if self.stop_signal is not None:
                self.log("stopping on %s: child pid=%d %s" % (signal.Signals(self.stop_signal).name, pid, long_))
                return 0
            if self.args.max_restarts is not None and restarts >= self.args.max_restarts:
                self.log("child pid=%d %s; giving up after %d restarts" % (pid, long_, restarts))
                return code
            restarts += 1
            self.log("child pid=%d %s; restart %d in %gs" % (pid, long_, restarts, self.args.restart_delay))
            self.sleep_interruptible(self.args.restart_delay)
            if self.stop_signal is not None:
                self.log("stopping on %s before restart %d" % (signal.Signals(self.stop_signal).name, restarts))
                return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        sys.stderr.write("usage: supervisor.py [--restart-delay S] [--max-restarts N] [--log FILE] "
                         "[--stop-timeout S] [--subreaper] -- CMD ARGS...\n")
        return 2
    i = argv.index("--")
    opts, cmd = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(prog="supervisor.py", description="restart CMD whenever it exits")
    ap.add_argument("--restart-delay", type=float, default=0.5)
    ap.add_argument("--max-restarts", type=int, default=None)
    ap.add_argument("--log")
    ap.add_argument("--stop-timeout", type=float, default=10.0)
    ap.add_argument("--subreaper", action="store_true")
    args = ap.parse_args(opts)
    if not cmd:
        ap.error("no command after --")
    if args.restart_delay < 0 or args.stop_timeout < 0 or (args.max_restarts is not None and args.max_restarts < 0):
        ap.error("delays and --max-restarts must be >= 0")
    return Supervisor(args, cmd).run()


if __name__ == "__main__":
    sys.exit(main())
