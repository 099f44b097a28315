"""scripts/check-structure: it passes on the repository and catches each shape it exists to forbid.

No root or kernel needed; it lives with the integration tests because `make integration` is what runs pytest."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECK = os.path.join(ROOT, "scripts", "check-structure")


def run(root):
    return subprocess.run(["/usr/bin/python3", CHECK, str(root)], capture_output=True, text=True, timeout=60)


def tree(tmp_path, files):
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


SOUND = {
    "user/main.c": '#include "loop.h"\n',
    "user/loop.c": '#include "loop.h"\n#include "scan.h"\n',
    "user/loop.h": '#include "context.h"\n',
    "user/scan.c": '#include "scan.h"\n#include "context.h"\n#include "orphans.h"\n',
    "user/scan.h": "",
    "user/context.h": '#include "common.h"\n',
    "user/core/common.h": "#include <stdint.h>\n",
    "user/core/orphans.c": '#include <json-c/json.h>\n#include "orphans.h"\n#include "common.h"\n',
    "user/core/orphans.h": "",
}


def test_repository_is_sound():
    r = run(ROOT)
    assert r.returncode == 0, r.stderr
    assert "no include cycle" in r.stdout


def test_sound_tree_passes(tmp_path):
    r = run(tree(tmp_path, SOUND))
    assert r.returncode == 0, r.stderr


def test_include_cycle_fails(tmp_path):
    files = dict(SOUND)
    files["user/context.h"] = '#include "common.h"\n#include "scan.h"\n'  # scan -> context -> scan
    r = run(tree(tmp_path, files))
    assert r.returncode == 1
    assert "include cycle between modules: user/context user/scan" in r.stderr


def test_core_library_header_fails(tmp_path):
    files = dict(SOUND)
    files["user/core/orphans.c"] = '#include <curl/curl.h>\n#include <systemd/sd-journal.h>\n#include "orphans.h"\n'
    r = run(tree(tmp_path, files))
    assert r.returncode == 1
    assert "user/core/orphans.c: core file includes the library header <curl/curl.h>" in r.stderr
    assert "<systemd/sd-journal.h>" in r.stderr


def test_core_including_glue_fails(tmp_path):
    files = dict(SOUND)
    files["user/core/orphans.c"] = '#include "orphans.h"\n#include "scan.h"\n'
    r = run(tree(tmp_path, files))
    assert r.returncode == 1
    assert 'user/core/orphans.c: core file includes "scan.h", which is not in user/core/' in r.stderr


def test_core_including_the_shared_event_definitions_passes(tmp_path):
    # include/oomsentry/ holds the structs the BPF programs write: data, no I/O, so a core decoder may use them
    files = dict(SOUND)
    files["include/oomsentry/events.h"] = "#include <linux/types.h>\n"
    files["user/core/orphans.c"] = '#include "orphans.h"\n#include "oomsentry/events.h"\n'
    r = run(tree(tmp_path, files))
    assert r.returncode == 0, r.stderr
    # anything else under include/ is not the shared definitions
    files["include/other.h"] = ""
    files["user/core/orphans.c"] = '#include "orphans.h"\n#include "other.h"\n'
    r = run(tree(tmp_path, files))
    assert r.returncode == 1
    assert 'user/core/orphans.c: core file includes "other.h", which is not in user/core/' in r.stderr


def test_unnamed_module_fails(tmp_path):
    files = dict(SOUND)
    files["docs/architecture.md"] = "`main.c`, `loop.c`, `scan.c` and `core/orphans.c`\n"
    r = run(tree(tmp_path, files))
    assert r.returncode == 0, r.stderr
    # a new module must say where it lives; the core's are named with their folder
    files["user/extra.c"] = '#include "context.h"\n'
    files["docs/architecture.md"] = "`main.c`, `loop.c`, `scan.c` and `orphans.c`\n"
    r = run(tree(tmp_path, files))
    assert r.returncode == 1
    assert "user/extra.c: not named in docs/architecture.md" in r.stderr
    assert "user/core/orphans.c: not named in docs/architecture.md" in r.stderr
    assert "user/scan.c: not named" not in r.stderr


def test_loop_h_below_the_loop_fails(tmp_path):
    files = dict(SOUND)
    files["user/scan.c"] = '#include "scan.h"\n#include "loop.h"\n'
    r = run(tree(tmp_path, files))
    assert r.returncode == 1
    assert "user/scan.c: includes loop.h" in r.stderr
