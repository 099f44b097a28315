#!/usr/bin/env python3
"""`make vmtest`, systemd part: deploy/oomsentry.service under a real systemd as PID 1 (Debian 12 under qemu).

  python3 tests/vm/vmsystemd.py [--accel tcg|kvm] [--keep]

The bookworm root of vm.build_root() with systemd, D-Bus and oomsentry's libraries, booted with
init=/lib/systemd/systemd; vmcheck.service runs tests/vm/guest-systemd once multi-user.target is up. Checked inside:
`systemd-analyze verify`; the unit starts (Type=notify) with every probe attached under its sandbox; the watchdog
is pinged; restart = systemd restarts a real comfyui.service (the simulator) over D-Bus with the queue preserved;
a crash is restarted; `systemd-analyze security` is recorded and may not get worse than docs/operations.md says.
"""
import argparse
import hashlib
import inspect
import json
import os
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import vm  # noqa: E402
from vmtest import runtime_packages  # noqa: E402  (the guest root follows what the binary links)

# man-db: systemd-analyze verify runs man for each Documentation=man:… of the unit
BASE_PACKAGES = ["systemd", "systemd-sysv", "udev", "dbus", "man-db", "python3", "procps", "util-linux", "iproute2"]
OPERATIONS = os.path.join(ROOT, "docs", "operations.md")
# --prekill: Debian unstable's systemd (>= 260) and systemd-oomd calling oomsentry's pre-kill hook (guest-prekill).
# The binary is built here for bookworm; unstable has the same sonames under the 64-bit time_t package names.
PREKILL_PACKAGES = ["systemd-oomd", "libbpf1", "libcurl4t64", "libjson-c5", "libinih1", "libmicrohttpd12t64",
                    "libsystemd0"]
PREKILL_CHECKS = ["systemd_version", "hook_socket", "varlinkctl_introspect", "oomd_called_the_hook",
                  "restart_before_the_kill", "queue_survives_the_kill"]
CHECKS = ["verify", "start", "bpf_under_hardening", "sandbox", "watchdog", "restart_systemd", "restart_job_failed",
          "crash_restarted",
          "security_score"]
VMCHECK_UNIT = """[Unit]
Description=oomsentry vmtest checks (tests/vm/guest-systemd)
After=multi-user.target dbus.service
RequiresMountsFor=/mnt/data
[Service]
Type=oneshot
ExecStart=/mnt/data/guest-systemd
StandardOutput=journal+console
StandardError=journal+console
[Install]
WantedBy=multi-user.target
"""


def hook(tree):
    with open(os.path.join(tree, "etc", "fstab"), "w") as f:
        # the drives by name, as the kernel found the root (vm.ROOT): NVMe namespaces come up in any order
        f.write("%s / ext4 rw 0 1\nLABEL=vmdata /mnt/data ext4 rw,nofail 0 2\n" % vm.ROOT)
    os.makedirs(os.path.join(tree, "mnt", "data"), exist_ok=True)
    unit = os.path.join(tree, "etc", "systemd", "system", "vmcheck.service")
    with open(unit, "w") as f:
        f.write(VMCHECK_UNIT)
    wants = os.path.join(tree, "etc", "systemd", "system", "multi-user.target.wants")
    os.makedirs(wants, exist_ok=True)
    os.symlink("/etc/systemd/system/vmcheck.service", os.path.join(wants, "vmcheck.service"))
    with open(os.path.join(tree, "etc", "hostname"), "w") as f:
        f.write("vmsystemd\n")
    # nothing to log in to, nobody to wait for
    for unit in ("getty@tty1.service", "serial-getty@ttyS0.service", "systemd-networkd-wait-online.service"):
        os.symlink("/dev/null", os.path.join(tree, "etc", "systemd", "system", unit))


# linux/capability.h: the numbers of the capabilities the unit may grant
CAPS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4,
        "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10,
        "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17,
        "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
        "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29, "CAP_SETFCAP": 31,
        "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36, "CAP_PERFMON": 38, "CAP_BPF": 39,
        "CAP_CHECKPOINT_RESTORE": 40}


def unit_capabilities():
    unit = open(os.path.join(ROOT, "deploy", "oomsentry.service")).read()
    return set(re.search(r"^CapabilityBoundingSet=(.*)$", unit, re.M).group(1).split())


def documented_score():
    m = re.search(r"systemd-analyze security oomsentry\.service[^\n]*?: ([0-9.]+)", open(OPERATIONS).read())
    return float(m.group(1)) if m else None


def stage(dest, script):
    os.makedirs(os.path.join(dest, "results"))
    shutil.copy(os.path.join(ROOT, "oomsentry"), dest)
    # vmcheck.service runs /mnt/data/guest-systemd: the mode's script goes there
    shutil.copy(os.path.join(HERE, script), os.path.join(dest, "guest-systemd"))
    shutil.copy(os.path.join(ROOT, "docs", "oomsentry.8"), dest)
    shutil.copytree(os.path.join(ROOT, "deploy"), os.path.join(dest, "deploy"),
                    ignore=shutil.ignore_patterns("k8s", "prometheus"))
    shutil.copytree(os.path.join(ROOT, "tests", "sim"), os.path.join(dest, "tests", "sim"),
                    ignore=shutil.ignore_patterns("__pycache__"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--accel", default=os.environ.get("VMTEST_ACCEL"))
    ap.add_argument("--keep", action="store_true", help="keep the data image and the console log")
    ap.add_argument("--timeout", type=int, default=int(os.environ.get("VMTEST_SYSTEMD_TIMEOUT", "1500")))
    ap.add_argument("--prekill", action="store_true",
                    help="Debian unstable (systemd >= 260): systemd-oomd calls the pre-kill hook before a real kill")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("vmsystemd: run as root (debootstrap, mkfs)")
    binary = os.path.join(ROOT, "oomsentry")
    if not os.access(binary, os.X_OK):
        raise SystemExit("vmsystemd: build oomsentry first (make)")
    cache = vm.DEFAULT_CACHE
    suite, script, checks = ("sid", "guest-prekill", PREKILL_CHECKS) if args.prekill else \
        ("bookworm", "guest-systemd", CHECKS)
    pkgs = BASE_PACKAGES + (PREKILL_PACKAGES if args.prekill else runtime_packages(binary))
    # the image is cached by what the hook writes, not by the rest of this file
    key = "vmsystemd:" + hashlib.sha256((VMCHECK_UNIT + inspect.getsource(hook)).encode()).hexdigest()[:12]
    root = vm.build_root(suite, pkgs, hook=hook, hook_key=key, cache=cache)
    kernel, version = vm.fetch_kernel("bookworm", cache=cache)
    work = tempfile.mkdtemp(prefix="vmsystemd-", dir=cache)
    try:
        stage(os.path.join(work, "data"), script)
        data = vm.data_image(os.path.join(work, "data"), os.path.join(work, "data.img"))
        console_log = os.path.join(cache, "console-systemd.log")
        vm.log("booting %s with systemd as PID 1 (TCG: a few minutes)" % version)
        t0 = time.time()
        console, timed_out = vm.boot(kernel, root, drives=[data], init="/lib/systemd/systemd",
                                     cmdline="systemd.unit=multi-user.target systemd.show_status=0 "
                                             "systemd.journald.forward_to_console=1",
                                     timeout=args.timeout, console_log=console_log, accel=args.accel)
        took = time.time() - t0
        results = {}
        for name in ("systemd.jsonl", "security.txt", "journal.txt"):
            vm.read_from_image(data, "/results/" + name, os.path.join(cache, "systemd-" + name))
        try:
            with open(os.path.join(cache, "systemd-systemd.jsonl")) as f:
                for line in f:
                    r = json.loads(line)
                    results[r["check"]] = r
        except OSError:
            pass
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    failed = []
    print("%s root, systemd as PID 1, kernel %s under qemu (%s, %.0f s%s): deploy/oomsentry.service" % (
        suite, version, args.accel or "tcg", took, ", TIMED OUT" if timed_out else ""))
    for c in checks:
        r = results.get(c)
        mark = "✔" if r and r["ok"] else "✘"
        if mark == "✘":
            failed.append(c)
        print("  %s %-20s %s" % (mark, c, (r["detail"] if r else "no result").splitlines()[0][:150] if r else "no result"))
    if args.prekill:
        if failed:
            print("vmsystemd --prekill: FAILED: %s (console: %s, guest journal: %s)" % (
                ", ".join(failed), console_log, os.path.join(cache, "systemd-journal.txt")))
            return 1
        print("vmsystemd --prekill: %d passed, 0 failed" % len(checks))
        return 0
    caps = results.get("sandbox", {}).get("detail", "")
    m = re.search(r"CapEff:\s*([0-9a-f]+)", caps)
    want = unit_capabilities()
    got = {n for n, b in CAPS.items() if m and int(m.group(1), 16) >> b & 1}
    if not m or (got != want or int(m.group(1), 16) & ~sum(1 << CAPS[n] for n in want)):
        print("  ✘ %-20s effective %s, the unit's bounding set %s" % ("capabilities", m and m.group(1), sorted(want)))
        failed.append("capabilities")
    else:
        print("  ✔ %-20s effective = CapabilityBoundingSet= (%s)" % ("capabilities", " ".join(sorted(want))))
    score = results.get("security_score", {}).get("detail")
    doc = documented_score()
    if score:
        worse = doc is None or float(score) > doc
        print("  %s %-20s measured %s, docs/operations.md %s" % ("✘" if worse else "✔", "security_not_worse",
                                                                  score, doc))
        if worse:
            failed.append("security_not_worse")
    if failed:
        print("vmsystemd: FAILED: %s (console: %s, guest journal: %s)" % (
            ", ".join(failed), console_log, os.path.join(cache, "systemd-journal.txt")))
        return 1
    print("vmsystemd: %d passed, 0 failed" % (len(CHECKS) + 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
