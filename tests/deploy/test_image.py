"""deploy/Dockerfile has what the build and the binary need, checked without a container runtime: its build stage
installs the -dev package of every pkg-config module the Makefile links, its runtime stage the package of every
shared library the built binary names (DT_NEEDED), as this Debian 12 host's dpkg knows them."""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCKERFILE = os.path.join(ROOT, "deploy", "Dockerfile")
BINARY = os.path.join(ROOT, "oomsentry")


def stages():
    """The packages each `apt-get install` of the Dockerfile names, build stage first."""
    text = open(DOCKERFILE).read().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        m = re.search(r"apt-get install -y --no-install-recommends (.*?)(?:&&|$)", line)
        if m:
            found.append(set(m.group(1).split()))
    assert len(found) == 2, found
    return found


def owner(path):
    r = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
    if r.returncode != 0:
        r = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True, text=True)
    assert r.returncode == 0, "no package owns " + path
    return r.stdout.split(":", 1)[0]


def test_build_stage_has_every_library_the_makefile_links():
    build, _ = stages()
    make = open(os.path.join(ROOT, "Makefile")).read()
    modules = re.search(r"^PKGS := (.*)$", make, re.M).group(1).split()
    for mod in modules:
        pc = subprocess.run(["pkg-config", "--path", mod], capture_output=True, text=True).stdout.strip()
        assert pc, "pkg-config does not know " + mod
        assert owner(pc) in build, "%s (%s) missing from the Dockerfile's build stage" % (owner(pc), mod)


def test_runtime_stage_has_every_library_the_binary_needs():
    if not os.access(BINARY, os.X_OK):
        pytest.fail("build oomsentry first (make)")
    _, runtime = stages()
    dyn = subprocess.run(["readelf", "-d", BINARY], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn)
    where = dict(re.findall(r"^\s*(\S+) => (/\S+)", subprocess.run(["ldd", BINARY], capture_output=True, text=True,
                                                                     check=True).stdout, re.M))
    assert "libbpf.so.1" in needed
    for lib in needed:
        pkg = owner(where[lib])
        if pkg == "libc6":
            continue  # in every Debian image
        assert pkg in runtime, "%s (%s) missing from the Dockerfile's runtime stage" % (pkg, lib)
