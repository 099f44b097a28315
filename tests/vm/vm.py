"""Boot Debian's own kernel packages under qemu with a debootstrap root: the pieces `make vmtest` is made of.

Standard library only; runs as root on a Debian host with qemu-system-x86, debootstrap and e2fsprogs. Everything
lands under a cache directory (default .output/vm) so reruns cost one boot each:

  fetch_kernel(suite)            -> vmlinuz of linux-image-cloud-amd64 from that Debian suite, fetched with apt
                                    through its own sources list and state (the machine's own sources stay untouched)
  build_root(suite, packages)    -> ext4 image of a debootstrap root (cached by suite + package list + hook)
  data_image(dir)                -> ext4 image of a directory (label vmdata), attached as another NVMe namespace
  boot(kernel, root, ...)        -> the serial console's text, after the guest powered off or the timeout hit

The cloud kernels build NVMe and ext4 in, so no initramfs is needed: root=PARTUUID=... and init= a script (or
systemd, for a full system). Other helpers reuse this module for their own guests (e.g. a root with systemd as
PID 1): the init program, the extra packages and a hook that edits the root before it is imaged are parameters.
"""
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

MIRROR = os.environ.get("VMTEST_MIRROR", "http://deb.debian.org/debian")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
DEFAULT_CACHE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                             ".output", "vm")


def log(msg):
    print("vmtest: " + msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


def _apt_opts(d):
    # apt runs with its own sources, lists, cache and an empty dpkg status: it only downloads, installs nothing,
    # and never reads or writes the machine's own apt configuration state
    return ["-o", "Dir::Etc::SourceList=" + os.path.join(d, "sources.list"),
            "-o", "Dir::Etc::SourceParts=" + os.path.join(d, "sources.list.d"),
            "-o", "Dir::Etc::Preferences=/dev/null", "-o", "Dir::Etc::PreferencesParts=" + os.path.join(d, "prefs.d"),
            "-o", "Dir::State::Lists=" + os.path.join(d, "lists"),
            "-o", "Dir::State::status=" + os.path.join(d, "status"),
            "-o", "Dir::Cache=" + os.path.join(d, "cache"),
            "-o", "APT::Sandbox::User=root", "-o", "APT::Architecture=amd64",
            "-o", "Acquire::Languages=none", "-q"]


def fetch_kernel(suite, cache=DEFAULT_CACHE, flavour="cloud-amd64"):
    """The suite's current linux-image-<version>-<flavour>: returns (vmlinuz path, package version string)."""
    d = os.path.join(cache, "apt", suite)
    for sub in ("lists/partial", "cache/archives/partial", "sources.list.d", "prefs.d"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    with open(os.path.join(d, "sources.list"), "w") as f:
        f.write("deb [signed-by=%s] %s %s main\n" % (KEYRING, MIRROR, suite))
    open(os.path.join(d, "status"), "a").close()
    stamp = os.path.join(d, "updated")
    # the index is refreshed once a day: point releases replace the kernel package and drop the old one
    if not os.path.exists(stamp) or time.time() - os.path.getmtime(stamp) > 86400:
        run(["apt-get"] + _apt_opts(d) + ["update"], stdout=subprocess.DEVNULL)
        open(stamp, "w").close()
    meta = "linux-image-" + flavour
    out = run(["apt-cache"] + _apt_opts(d) + ["depends", meta], capture_output=True, text=True).stdout
    deps = [l.split(":", 1)[1].strip() for l in out.splitlines() if l.strip().startswith("Depends:")]
    pkg = next((p for p in deps if p.startswith("linux-image-") and p.endswith(flavour)), None)
    if not pkg:
        raise RuntimeError("%s: no kernel package behind %s (%s)" % (suite, meta, out.strip()))
    kdir = os.path.join(cache, "kernels", pkg)
    vmlinuz = glob.glob(os.path.join(kdir, "boot", "vmlinuz-*"))
    if not vmlinuz:
        dl = os.path.join(d, "debs")
        os.makedirs(dl, exist_ok=True)
        log("%s: downloading %s" % (suite, pkg))
        run(["apt-get"] + _apt_opts(d) + ["download", pkg], cwd=dl, stdout=subprocess.DEVNULL)
        deb = sorted(glob.glob(os.path.join(dl, pkg + "_*.deb")))[-1]
        tmp = kdir + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        # only the kernel and its config: the cloud flavour builds in what these guests need (NVMe, ext4, BPF)
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
        run(["tar", "-x", "-C", tmp, "--wildcards", "./boot/vmlinuz-*", "./boot/config-*"], stdin=tar.stdout)
        tar.wait()
        shutil.rmtree(kdir, ignore_errors=True)
        os.rename(tmp, kdir)
        os.unlink(deb)
        vmlinuz = glob.glob(os.path.join(kdir, "boot", "vmlinuz-*"))
    return vmlinuz[0], os.path.basename(vmlinuz[0])[len("vmlinuz-"):]


# The root drive's MBR disk signature: root=PARTUUID=<signature>-01 (the kernel reads MBR partitions itself, no
# initramfs needed). Two NVMe drives, or two namespaces of one, are probed in either order on newer kernels, so
# root=/dev/nvme0n1 would find the data drive half of the time.
ROOT_DISK_SIGNATURE = 0x6f6f6d73
ROOT = "PARTUUID=%08x-01" % ROOT_DISK_SIGNATURE
ROOT_OFFSET = 1 << 20


def write_mbr(path, start, length):
    """One Linux partition from `start` for `length` bytes, in the first sector of the image."""
    import struct
    entry = struct.pack("<B3sB3sII", 0, b"\xfe\xff\xff", 0x83, b"\xfe\xff\xff", start // 512, length // 512)
    mbr = bytearray(512)
    mbr[440:444] = struct.pack("<I", ROOT_DISK_SIGNATURE)
    mbr[446:462] = entry
    mbr[510:512] = b"\x55\xaa"
    with open(path, "r+b") as f:
        f.write(mbr)


def build_root(suite="bookworm", packages=(), hook=None, hook_key="", cache=DEFAULT_CACHE, size="2G"):
    """An ext4 image of a minimal debootstrap root plus `packages`, cached under a key of its inputs.

    hook(root_dir) may edit the tree before it is imaged (fstab, units, a root password); pass hook_key, a string
    that changes whenever the hook's effect does, so that the cache notices."""
    pkgs = sorted(set(packages))
    key = hashlib.sha256(("%s|%s|%s|%s|mbr-%08x" % (suite, ",".join(pkgs), hook_key, size, ROOT_DISK_SIGNATURE))
                         .encode()).hexdigest()[:12]
    img = os.path.join(cache, "root-%s-%s.img" % (suite, key))
    if os.path.exists(img):
        return img
    os.makedirs(cache, exist_ok=True)
    tree = tempfile.mkdtemp(prefix="root-%s-" % suite, dir=cache)
    try:
        log("debootstrap %s (%d extra packages; cached as %s)" % (suite, len(pkgs), os.path.basename(img)))
        t0 = time.time()
        cmd = ["debootstrap", "--variant=minbase", "--keyring=" + KEYRING]
        if pkgs:
            cmd.append("--include=" + ",".join(pkgs))
        run(cmd + [suite, tree, MIRROR], stdout=subprocess.DEVNULL)
        # apt's downloaded .debs are no use inside a throw-away guest
        shutil.rmtree(os.path.join(tree, "var/cache/apt/archives"), ignore_errors=True)
        os.makedirs(os.path.join(tree, "var/cache/apt/archives/partial"), exist_ok=True)
        if hook:
            hook(tree)
        tmp = img + ".tmp"
        if os.path.exists(tmp):
            os.unlink(tmp)
        # the file system starts 1 MiB in, behind an MBR with one partition: the kernel finds the root by that
        # partition's PARTUUID, whatever order the drives are probed in
        run(["mkfs.ext4", "-q", "-F", "-L", "vmroot", "-E", "offset=%d" % ROOT_OFFSET, "-d", tree, tmp, size],
            stdout=subprocess.DEVNULL)
        write_mbr(tmp, ROOT_OFFSET, os.path.getsize(tmp) - ROOT_OFFSET)
        os.rename(tmp, img)
        log("root image ready in %.0f s" % (time.time() - t0))
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    return img


def data_image(src_dir, img, size="1G"):
    """The directory as an ext4 image (a second drive: the guest reads its work there and writes results back)."""
    run(["mkfs.ext4", "-q", "-F", "-L", "vmdata", "-d", src_dir, img, size], stdout=subprocess.DEVNULL)
    return img


def read_from_image(img, path, dest):
    """Copy one file out of an ext4 image without mounting it; False when the file is not there."""
    r = subprocess.run(["debugfs", "-R", "dump %s %s" % (path, dest), img], capture_output=True, text=True)
    return r.returncode == 0 and os.path.exists(dest) and "not found" not in r.stderr


def boot(kernel, root_img, drives=(), cmdline="", init="/sbin/init", memory="3G", smp=2, timeout=900,
         console_log=None, accel=None):
    """Boots until the guest powers off (echo o > /proc/sysrq-trigger) or `timeout` seconds pass.

    Returns (console text, timed_out). The root is found by its PARTUUID (ROOT); `drives` are further images,
    further namespaces of the same NVMe controller, named in probe order: find them by file-system label.
    accel: "kvm", or "tcg" by default: /dev/kvm can open inside a VM and still fail to run a
    guest (nested KVM here stops at the first instruction it cannot emulate)."""
    accel = accel or "tcg"
    # TCG runs its vCPUs in one thread: with one host thread per vCPU (MTTCG, the default), a guest CPU kept
    # executing its old translation of a site the kernel was patching through int3 (text_poke_bp, when a BPF
    # program attaches to a syscall tracepoint) and looped in exc_int3 for good while the other waited in bpf():
    # soft lockups on both vCPUs and a guest that never powered off (the 6.1 guest, 1 run in several)
    accel_arg = "tcg,thread=single" if accel == "tcg" else accel
    args = ["qemu-system-x86_64", "-machine", "q35", "-accel", accel_arg, "-m", memory, "-smp", str(smp),
            "-cpu", "host" if accel == "kvm" else "max",
            "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
            "-kernel", kernel,
            "-append", "root=%s rw rootwait console=ttyS0 panic=-1 init=%s %s" % (ROOT, init, cmdline),
            "-device", "nvme,id=nvme0,serial=vmtest",
            # the cached root stays pristine: the guest's writes to it go to a throw-away overlay
            "-drive", "file=%s,if=none,id=root,format=raw,cache=unsafe,snapshot=on" % root_img,
            "-device", "nvme-ns,drive=root,bus=nvme0,nsid=1"]
    for i, d in enumerate(drives):
        args += ["-drive", "file=%s,if=none,id=d%d,format=raw,cache=unsafe" % (d, i),
                 "-device", "nvme-ns,drive=d%d,bus=nvme0,nsid=%d" % (i, i + 2)]
    out = open(console_log, "w+") if console_log else tempfile.TemporaryFile("w+")
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, text=True)
    timed_out = False
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        p.kill()
        p.wait()
    out.seek(0)
    text = out.read()
    out.close()
    return text, timed_out
