#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""ComfyUI API simulator: stands in for ComfyUI in oomsentry's integration tests and demo.

Why it exists: oomsentry must be tested against something the kernel sees exactly like ComfyUI -- one
`python3` process that serves the ComfyUI HTTP/websocket API and runs prompts on a worker thread -- with
REAL memory that behaves like ComfyUI's (model kept resident between prompts until /free, a transient
working set per generation, leaks that only /free, the executor cache reset or a restart release).

Memory is private anonymous mmap with every page written, so RSS and the memory cgroup account for it;
release is munmap, so it really returns. Python standard library only.

Fidelity notes (ComfyUI server.py / execution.py / main.py):
  * /free only sets flags; the prompt worker consumes them after the running prompt, or at once when idle
    (the flag wakes the worker's queue wait), then gc.collect() at most every 10 s.
  * /interrupt sets a flag checked before each node and at each sampler step; it is cleared when a prompt
    starts, so an interrupt sent while idle is lost.
  * execution_start/_cached/_success/_error and executing (each node's, and the final {"node": null}) are sent
    only when the prompt has a client_id (to that client); progress goes to the client, or to everybody when
    there is no client_id; execution_interrupted likewise (ComfyUI's broadcast=True); progress_state (each
    node's start, step and end, ComfyUI 0.3.4x on) to everybody whatever the client_id.
  * `status` is broadcast on every queue change.
  * A prompt's order of events: its nodes (the sampler's transient working set is freed when the sampler node
    returns), SaveImage's output, execution_success, then task_done writes /history and broadcasts `status`,
    then the final executing.
  * SIGTERM: ComfyUI installs no handler, so the kernel ends it the instant the signal is sent; the sim shuts down
    gracefully but nothing observable happens after the signal (no output, history entry, websocket frame or
    HTTP reply): a prompt stopped between its SaveImage and task_done has its output saved and no record of it.
  * Checkpoints are keyed by CheckpointLoaderSimple's ckpt_name and stay loaded side by side until /free
    (current_loaded_models); a prompt may load its checkpoint in the middle of sampling (model_load_step).
  * Workload shapes of the prevention matrix (tests/sim/shapes.py): a leak held by a custom node's worker
    process (--worker-leak-mb), growth while idle (--idle-leak-mb-per-s), memory in PyTorch tensors (--torch),
    and SaveImage's filename_prefix appended to OUTPUT_DIR/outputs.log on success (--output-directory), which
    counts each prompt's results across server restarts.

Run `comfy_sim.py --help` for the command line.
"""

import argparse
import multiprocessing
import base64
import errno
import gc
import hashlib
import json
import math
import mmap
import os
import queue as queue_mod
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

MIB = 1 << 20
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MAXIMUM_HISTORY_SIZE = 10000          # ComfyUI execution.py
GC_COLLECT_INTERVAL_S = 10.0          # ComfyUI main.py prompt_worker
MAX_BODY_BYTES = 64 * MIB
WS_MAX_MESSAGE_BYTES = 4 * MIB
WS_MAX_QUEUED_FRAMES = 4096
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")
OUTPUT_NODE_TYPES = ("SaveImage", "PreviewImage", "SaveAnimatedWEBP", "SaveVideo", "SimControl")
SIM_VERSION = "0.3.x-sim"

# Linux >= 5.14; Python 3.11 has no constant for it.
MADV_POPULATE_WRITE = 23
_populate_ok = os.environ.get("COMFY_SIM_NO_POPULATE", "") == ""
# ComfyUI dies the instant SIGTERM is sent, in the middle of a model load too; one madvise over a 300 MiB region
# would go on charging memory for ~170 ms after the signal (a watchdog's SIGTERM then looked too slow to stop a
# climb that the real server would have stopped at once). Regions are made resident in slices, and between slices
# the server's stop check (set by Server) halts the thread, as the kernel would have ended it.
TOUCH_SLICE = 8 * 1024 * 1024
_stop_check = None


def _halt_if_stopped():
    if _stop_check is not None:
        _stop_check()

# Fill pattern for the fallback path: non-zero, so no zero-page trick can make the pages cheap.
_FILL = memoryview(b"\xa5" * MIB)


def log(msg):
    """One line to stdout for the human watching the demo; never let a closed pipe kill the sim."""
    try:
        sys.stdout.write("comfy_sim: " + msg + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def elog(msg):
    try:
        sys.stderr.write("comfy_sim: " + msg + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def rss_bytes():
    """Resident set size of this process, as the kernel accounts it (/proc/self/statm)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return 0


def meminfo_bytes(key):
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def set_comm(name="python3"):
    """The kernel must see comm "python3" like a real ComfyUI, even when started as ./comfy_sim.py or via
    /usr/bin/python3.11. Done before any thread starts, so every thread inherits it."""
    try:
        with open("/proc/self/comm") as f:
            if f.read().strip() == name:
                return
        with open("/proc/self/comm", "w") as f:
            f.write(name)
    except OSError:
        pass


def mib(nbytes):
    return nbytes / MIB


# ---------------------------------------------------------------------------------------------------------
# Real memory
# ---------------------------------------------------------------------------------------------------------

class Region:
    """A private anonymous mapping. Untouched pages cost nothing; touch_to() writes pages so they become
    resident (RSS, memcg), release() munmaps so the memory goes back to the kernel at once."""

    def __init__(self, size_bytes, name):
        size_bytes = max(0, int(size_bytes))
        self.size = (size_bytes + PAGE_BYTES - 1) // PAGE_BYTES * PAGE_BYTES
        self.name = name
        self.touched = 0
        self.map = None
        if self.size > 0:
            # Raises OSError(ENOMEM) when the kernel refuses the mapping (overcommit); callers turn it into a
            # ComfyUI-like execution_error.
            self.map = mmap.mmap(-1, self.size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                                 prot=mmap.PROT_READ | mmap.PROT_WRITE)

    def touch_to(self, nbytes):
        """Make the first nbytes (rounded up to a page, capped at the size) resident."""
        if self.map is None:
            return
        global _populate_ok
        end = min(self.size, (max(0, int(nbytes)) + PAGE_BYTES - 1) // PAGE_BYTES * PAGE_BYTES)
        pos = self.touched
        if pos < end and _populate_ok:
            # One syscall write-faults every page (same RSS/memcg charge and OOM behaviour as writing them,
            # several times faster). ENOMEM propagates; "unsupported" falls back to writing.
            try:
                while pos < end:
                    _halt_if_stopped()
                    n = min(TOUCH_SLICE, end - pos)
                    self.map.madvise(MADV_POPULATE_WRITE, pos, n)
                    pos += n
            except OSError as e:
                if e.errno == errno.ENOMEM:
                    raise
                if e.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
                    _populate_ok = False
        while pos < end:
            if pos % TOUCH_SLICE == 0:
                _halt_if_stopped()
            n = min(MIB, end - pos)
            self.map[pos:pos + n] = _FILL[:n]
            pos += n
        self.touched = max(self.touched, end)

    def touch_all(self):
        self.touch_to(self.size)

    def release(self):
        """munmap; returns the bytes that were resident."""
        freed = self.touched
        if self.map is not None:
            self.map.close()
            self.map = None
        self.touched = 0
        return freed


class TorchRegion:
    """The same contract as Region, backed by a PyTorch CPU tensor (--torch): the memory a real ComfyUI holds
    is tensors from torch's CPU allocator, not our mmap, and a watchdog must see no difference. torch.empty
    reserves without touching; fill_ on a slice makes those pages resident; dropping the last reference
    returns a large allocation to the kernel at once (glibc serves it with its own mmap)."""

    def __init__(self, size_bytes, name):
        self.size = max(0, int(size_bytes))
        self.name = name
        self.touched = 0
        self.tensor = None
        if self.size > 0:
            try:
                self.tensor = _torch.empty(self.size, dtype=_torch.uint8)
            except RuntimeError as e:       # c10's "DefaultCPUAllocator: can't allocate memory"
                raise MemoryError(str(e))

    def touch_to(self, nbytes):
        if self.tensor is None:
            return
        end = min(self.size, max(0, int(nbytes)))
        while end > self.touched:
            _halt_if_stopped()
            n = min(TOUCH_SLICE, end - self.touched)
            self.tensor[self.touched:self.touched + n].fill_(0xA5)
            self.touched += n

    def touch_all(self):
        self.touch_to(self.size)

    def release(self):
        freed = self.touched
        self.tensor = None
        self.touched = 0
        return freed


_torch = None


def use_torch():
    """--torch: every region a tensor. One intra-op thread: a fill must not take the machine's other CPUs."""
    global _torch
    import ctypes
    import torch
    torch.set_num_threads(1)
    # glibc serves an allocation from its own mmap above a threshold that grows (up to 32 MiB) each time such a
    # block is freed; below it, freed memory stays in the heap. A real model's tensors are far above 32 MiB; the
    # simulator's regions may be smaller, so fix the threshold: every region returns to the kernel when freed.
    M_MMAP_THRESHOLD = -3
    ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, 1 << 20)
    _torch = torch


def new_region(size_bytes, name):
    return TorchRegion(size_bytes, name) if _torch is not None else Region(size_bytes, name)


class Memory:
    """What ComfyUI keeps between prompts: the loaded checkpoints with the leaks attached to them
    (unload_models), the executor cache leak (free_memory), the custom-node leak (only a restart).
    Checkpoints are keyed by ckpt_name and stay loaded side by side until /free, like
    comfy.model_management.current_loaded_models on a machine with room for them."""

    def __init__(self, model_bytes):
        self.lock = threading.Lock()
        self.model_bytes = model_bytes
        self.models = {}
        self.model_leaks = []
        self.cache_leaks = []
        self.node_leaks = []
        self.model_loads = 0

    def ensure_model(self, name="default", size_bytes=None):
        """Load the checkpoint `name` if it is not resident; returns the bytes loaded (0 when already loaded)."""
        size = self.model_bytes if size_bytes is None else int(size_bytes)
        with self.lock:
            if name in self.models or size <= 0:
                return 0
        region = new_region(size, "model " + name)
        try:
            region.touch_all()
        except BaseException:
            region.release()
            raise
        with self.lock:
            self.models[name] = region
            self.model_loads += 1
        return region.touched

    def add_leak(self, kind, region):
        with self.lock:
            {"model": self.model_leaks, "cache": self.cache_leaks, "node": self.node_leaks}[kind].append(region)

    def unload_models(self):
        """comfy.model_management.unload_all_models(): every checkpoint and everything attached to them."""
        with self.lock:
            regions = list(self.models.values()) + self.model_leaks
            self.models = {}
            self.model_leaks = []
        return sum(r.release() for r in regions)

    def reset_cache(self):
        """PromptExecutor.reset(): the node output cache."""
        with self.lock:
            regions = self.cache_leaks
            self.cache_leaks = []
        return sum(r.release() for r in regions)

    def snapshot(self):
        with self.lock:
            return {
                "model_loaded": bool(self.models),
                "model_bytes": sum(r.touched for r in self.models.values()),
                "models_loaded": sorted(self.models),
                "model_loads": self.model_loads,
                "model_leak_bytes": sum(r.touched for r in self.model_leaks),
                "cache_leak_bytes": sum(r.touched for r in self.cache_leaks),
                "node_leak_bytes": sum(r.touched for r in self.node_leaks),
            }


# ---------------------------------------------------------------------------------------------------------
# WebSocket (RFC 6455, server side)
# ---------------------------------------------------------------------------------------------------------

def ws_frame(opcode, payload=b""):
    n = len(payload)
    b0 = 0x80 | opcode
    if n < 126:
        head = struct.pack("!BB", b0, n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 126, n)
    else:
        head = struct.pack("!BBQ", b0, 127, n)
    return head + payload


def ws_unmask(data, mask):
    n = len(data)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class WSClient:
    """One websocket connection. A writer thread owns all sends so the prompt worker never blocks on a slow
    client; a client that falls WS_MAX_QUEUED_FRAMES behind is dropped."""

    def __init__(self, sock, sid, gone=None):
        self.sock = sock
        self.sid = sid
        self.gone = gone
        self.out = queue_mod.Queue(maxsize=WS_MAX_QUEUED_FRAMES)
        self.closed = False
        self.lock = threading.Lock()
        self.writer = threading.Thread(target=self._write_loop, name="ws-writer", daemon=True)
        self.writer.start()

    def _write_loop(self):
        while True:
            frame = self.out.get()
            if frame is None:
                break
            if self.gone is not None and self.gone():
                continue    # queued, not yet sent when ComfyUI was killed: never sent
            try:
                self.sock.sendall(frame)
            except OSError:
                break
        self.abort()

    def _enqueue(self, frame):
        with self.lock:
            if self.closed:
                return
            try:
                self.out.put_nowait(frame)
            except queue_mod.Full:
                self.closed = True
                # Drop everything queued so the sentinel fits: a client this far behind is gone.
                while True:
                    try:
                        self.out.get_nowait()
                    except queue_mod.Empty:
                        break
                self.out.put_nowait(None)

    def send_text(self, text):
        self._enqueue(ws_frame(0x1, text.encode("utf-8")))

    def send_json(self, event, data):
        self.send_text(json.dumps({"type": event, "data": data}))

    def send_control(self, opcode, payload=b""):
        self._enqueue(ws_frame(opcode, payload))

    def close(self, close_payload=None):
        """Graceful: queue a close frame (if given), then stop the writer after it went out."""
        if close_payload is not None:
            self.send_control(0x8, close_payload)
        with self.lock:
            if self.closed:
                return
            self.closed = True
            try:
                self.out.put_nowait(None)
            except queue_mod.Full:
                pass

    def abort(self):
        """Hard close: wakes the reader (EOF) and the writer."""
        with self.lock:
            self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.out.put_nowait(None)
        except queue_mod.Full:
            pass


class WSProtocolError(Exception):
    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code


# ---------------------------------------------------------------------------------------------------------
# The server: PromptServer + PromptQueue + prompt_worker, in one object
# ---------------------------------------------------------------------------------------------------------

class Interrupted(Exception):
    pass


class NodeFailure(Exception):
    def __init__(self, exception_type, message):
        super().__init__(message)
        self.exception_type = exception_type
        self.message = message


class BadRequest(Exception):
    def __init__(self, message, details="", node_errors=None, etype="invalid_request"):
        super().__init__(message)
        self.message = message
        self.details = details
        self.node_errors = node_errors
        self.etype = etype

    def body(self):
        out = {"error": {"type": self.etype, "message": self.message, "details": self.details, "extra_info": {}}}
        if self.node_errors is not None:
            out["node_errors"] = self.node_errors
        return out


SIM_CONTROL_LIMITS = {
    # input: (integer only, minimum, maximum)
    "steps": (True, 1, 100000),
    "step_ms": (False, 0, 600000),
    "peak_mb": (False, 0, 1 << 22),
    "leak_mb": (False, 0, 1 << 22),
    "cache_leak_mb": (False, 0, 1 << 22),
    "node_leak_mb": (False, 0, 1 << 22),
    "error_at_step": (True, 0, 100000),
    # the checkpoint this prompt loads (CheckpointLoaderSimple's ckpt_name): its size, and the sampler step at
    # which it is loaded (0: at the loader node; k: lazily at step k, as a second model or refiner loads
    # in the middle of a generation)
    "model_mb": (False, 0, 1 << 22),
    "model_load_step": (True, 0, 100000),
    # kept per generation by the custom-node worker process (only that process's exit frees it)
    "worker_leak_mb": (False, 0, 1 << 22),
}
LOADER_NODE_INPUTS = {"CheckpointLoaderSimple": "ckpt_name", "CheckpointLoader": "ckpt_name",
                      "UNETLoader": "unet_name"}


def sim_control_nodes(prompt):
    return [(nid, node) for nid, node in prompt.items()
            if isinstance(node, dict) and node.get("class_type") == "SimControl"]


def validate_sim_control(prompt):
    """ComfyUI-shaped node_errors for bad SimControl inputs ({} when fine)."""
    node_errors = {}
    for nid, node in sim_control_nodes(prompt):
        inputs = node.get("inputs", {})
        errors = []
        if not isinstance(inputs, dict):
            errors.append({"type": "invalid_input_type", "message": "inputs must be an object",
                           "details": "inputs", "extra_info": {"input_name": "inputs"}})
            inputs = {}
        for name, (integer, lo, hi) in SIM_CONTROL_LIMITS.items():
            if name not in inputs:
                continue
            val = inputs[name]
            ok = isinstance(val, (int, float)) and not isinstance(val, bool) and math.isfinite(val)
            if ok and integer and val != int(val):
                ok = False
            if not ok:
                errors.append({"type": "invalid_input_type",
                               "message": "Failed to convert an input value to a %s value" %
                                          ("INT" if integer else "FLOAT"),
                               "details": "%s, %r" % (name, val),
                               "extra_info": {"input_name": name, "received_value": val}})
            elif val < lo:
                errors.append({"type": "value_smaller_than_min",
                               "message": "Value %r smaller than min of %r" % (val, lo),
                               "details": name, "extra_info": {"input_name": name, "received_value": val}})
            elif val > hi:
                errors.append({"type": "value_bigger_than_max",
                               "message": "Value %r bigger than max of %r" % (val, hi),
                               "details": name, "extra_info": {"input_name": name, "received_value": val}})
        if errors:
            node_errors[nid] = {"errors": errors, "dependent_outputs": [nid], "class_type": "SimControl"}
    return node_errors


class Sim:
    def __init__(self, args):
        self.args = args
        self.mem = Memory(int(args.model_mb * MIB))
        # PromptQueue
        self.mutex = threading.RLock()
        self.not_empty = threading.Condition(self.mutex)
        self.queue = []                # [(sort_key, item)], item = [number, prompt_id, prompt, extra_data, outputs]
        self.seq = 0
        self.task_counter = 0
        self.currently_running = {}
        self.history = {}
        self.flags = {}
        # PromptServer
        self.number = 0
        self.sockets = {}
        self.sockets_lock = threading.Lock()
        self.client_id = None
        self.last_node_id = None
        self.last_prompt_id = None
        # nodes.interrupt_processing
        self.interrupt_flag = False
        self.generation = 0
        self.status_messages = []
        self.progress_nodes = {}
        self.state_lock = threading.Lock()
        self.worker_pids = []
        self.started_at = time.time()
        self.leak_worker_obj = None
        self.leak_worker_lock = threading.Lock()
        # Set by SIGTERM/SIGINT. ComfyUI installs no SIGTERM handler, so the kernel ends it the instant the signal
        # is sent: from then on nothing more is allocated, no output is saved, no history entry written, no
        # websocket frame or HTTP reply sent, while the shutdown below still takes the workers and the pid file
        # with it. Every such effect asks gone() first, under `gate`, which is also held while the main thread
        # takes the signal and sets `stopping`: a stop signal already sent (pending) counts as taken, so nothing
        # slips in between the signal and the main thread getting round to it (it may wait for the GIL for
        # milliseconds on a busy machine, which the kernel's kill of ComfyUI never does).
        self.stopping = threading.Event()
        self.gate = threading.Lock()
        global _stop_check
        _stop_check = self.halt_if_stopping

    def gone_locked(self):
        return self.stopping.is_set() or bool(signal.sigpending() & STOP_SIGNALS)

    def gone(self):
        with self.gate:
            return self.gone_locked()

    def commit(self, effect):
        """Runs effect() unless a stop signal was sent; True when it ran. Nothing observable happens after it."""
        with self.gate:
            if self.gone_locked():
                return False
            effect()
            return True

    @staticmethod
    def halt():
        while True:
            time.sleep(3600)

    def halt_if_stopping(self):
        if self.gone():
            self.halt()

    def leak_worker(self):
        """Started by the first prompt that needs it, again after it died, as custom nodes start theirs."""
        with self.leak_worker_lock:
            if self.leak_worker_obj is None or not self.leak_worker_obj.alive():
                self.leak_worker_obj = LeakWorker()
                signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
                log("custom node worker started, pid=%d" % self.leak_worker_obj.pid)
            return self.leak_worker_obj

    # --- websocket fan-out (PromptServer.send_sync) ---------------------------------------------------

    def send(self, event, data, sid=None):
        if self.gone():
            return
        text = json.dumps({"type": event, "data": data})
        with self.sockets_lock:
            if sid is None:
                targets = list(self.sockets.values())
            else:
                c = self.sockets.get(sid) if isinstance(sid, str) else None
                targets = [c] if c is not None else []
        for c in targets:
            c.send_text(text)

    def ws_register(self, client):
        with self.sockets_lock:
            self.sockets[client.sid] = client

    def ws_unregister(self, client):
        with self.sockets_lock:
            if self.sockets.get(client.sid) is client:
                del self.sockets[client.sid]

    def ws_close_all(self):
        with self.sockets_lock:
            clients = list(self.sockets.values())
            self.sockets.clear()
        for c in clients:
            c.abort()

    def queue_info(self):
        with self.mutex:
            return {"exec_info": {"queue_remaining": len(self.queue) + len(self.currently_running)}}

    def queue_updated(self):
        self.send("status", {"status": self.queue_info()})

    # --- PromptQueue ------------------------------------------------------------------------------------

    def put(self, item):
        with self.mutex:
            self.seq += 1
            self.queue.append(((item[0], item[1], self.seq), item))
            self.queue.sort(key=lambda e: e[0])
            self.queue_updated()
            self.not_empty.notify()

    def get(self, timeout):
        with self.not_empty:
            while len(self.queue) == 0:
                self.not_empty.wait(timeout=timeout)
                if len(self.queue) == 0:
                    return None
            _, item = self.queue.pop(0)
            task_id = self.task_counter
            self.currently_running[task_id] = item
            self.task_counter += 1
            self.queue_updated()
            return item, task_id

    def task_done(self, task_id, history_result, status):
        # ComfyUI killed after the prompt's last node and before this has no record of it: neither has the sim.
        # (The gate is taken inside the mutex, as send() takes it under the mutex too.)
        with self.mutex:
            with self.gate:
                gone = self.gone_locked()
                if not gone:
                    item = self.currently_running.pop(task_id)
                    if len(self.history) > MAXIMUM_HISTORY_SIZE:
                        self.history.pop(next(iter(self.history)))
                    entry = {"prompt": item, "outputs": {}, "status": status}
                    entry.update(history_result)
                    self.history[item[1]] = entry
            if not gone:
                self.queue_updated()
        if gone:
            self.halt()

    def get_current_queue(self):
        with self.mutex:
            return list(self.currently_running.values()), [e[1] for e in self.queue]

    def wipe_queue(self):
        with self.mutex:
            self.queue = []
            self.queue_updated()

    def delete_queue_item(self, prompt_id):
        """ComfyUI removes the first match only."""
        with self.mutex:
            for i, (_, item) in enumerate(self.queue):
                if item[1] == prompt_id:
                    self.queue.pop(i)
                    self.queue_updated()
                    return True
        return False

    def get_history(self, prompt_id=None, max_items=None, offset=-1):
        with self.mutex:
            if prompt_id is None:
                out = {}
                i = 0
                if offset < 0 and max_items is not None:
                    offset = len(self.history) - max_items
                for k in self.history:
                    if i >= offset:
                        out[k] = self.history[k]
                        if max_items is not None and len(out) >= max_items:
                            break
                    i += 1
                return out
            if prompt_id in self.history:
                return {prompt_id: self.history[prompt_id]}
            return {}

    def wipe_history(self):
        with self.mutex:
            self.history = {}

    def delete_history_item(self, prompt_id):
        with self.mutex:
            self.history.pop(prompt_id, None)

    def set_flag(self, name, value):
        with self.mutex:
            self.flags[name] = value
            self.not_empty.notify()

    def get_flags(self):
        with self.mutex:
            flags = self.flags
            self.flags = {}
            return flags

    def interrupt(self):
        with self.mutex:
            self.interrupt_flag = True

    def check_interrupt(self):
        with self.mutex:
            if self.interrupt_flag:
                self.interrupt_flag = False
                raise Interrupted()

    # --- POST /prompt -----------------------------------------------------------------------------------

    def submit(self, body):
        if "number" in body:
            try:
                number = float(body["number"])
            except (TypeError, ValueError):
                raise BadRequest("number must be a number", repr(body["number"]))
            if not math.isfinite(number):
                raise BadRequest("number must be finite", repr(body["number"]))
        else:
            with self.mutex:
                number = self.number
                if body.get("front"):
                    number = -number
                self.number += 1
        if "prompt" not in body:
            raise BadRequest("No prompt provided", "No prompt provided", node_errors={}, etype="no_prompt")
        prompt = body["prompt"]
        if not isinstance(prompt, dict):
            raise BadRequest("Prompt must be an object", type(prompt).__name__, node_errors={},
                             etype="invalid_prompt")
        pid = body.get("prompt_id")
        prompt_id = str(uuid.uuid4()) if pid is None else str(pid)
        node_errors = validate_sim_control(prompt)
        if node_errors:
            raise BadRequest("Prompt outputs failed validation", "", node_errors=node_errors,
                             etype="prompt_outputs_failed_validation")
        extra_data = body.get("extra_data", {})
        if not isinstance(extra_data, dict):
            raise BadRequest("extra_data must be an object", type(extra_data).__name__, node_errors={})
        extra_data = dict(extra_data)
        if "client_id" in body:
            extra_data["client_id"] = body["client_id"]
        for k in SENSITIVE_EXTRA_DATA_KEYS:
            extra_data.pop(k, None)
        extra_data["create_time"] = int(time.time() * 1000)
        outputs = [nid for nid, node in prompt.items()
                   if isinstance(node, dict) and node.get("class_type") in OUTPUT_NODE_TYPES]
        if not outputs:
            outputs = list(prompt.keys())[-1:]
        if self.args.verbose:
            log("got prompt %s number=%s" % (prompt_id, number))
        self.put([number, prompt_id, prompt, extra_data, outputs])
        return {"prompt_id": prompt_id, "number": number, "node_errors": {}}

    # --- prompt execution ---------------------------------------------------------------------------------

    def add_message(self, event, data, broadcast):
        data = dict(data)
        data["timestamp"] = int(time.time() * 1000)
        self.status_messages.append([event, data])
        if self.client_id is not None or broadcast:
            self.send(event, data, self.client_id)

    def node_progress(self, prompt_id, node_id, state, value=None, max_value=None):
        """comfy_execution/progress.py: a node's start, step or end updates the prompt's registry and sends
        progress_state with every node that is not pending -- to every websocket (no sid), whatever the prompt's
        client_id."""
        entry = self.progress_nodes.setdefault(node_id, {"value": 0.0, "max": 1.0})
        entry["state"] = state
        if max_value is not None:
            entry["max"] = max_value
        entry["value"] = entry["max"] if state == "finished" else value
        nodes = {nid: {"value": e["value"], "max": e["max"], "state": e["state"], "node_id": nid,
                       "prompt_id": prompt_id, "display_node_id": nid, "parent_node_id": None, "real_node_id": nid}
                 for nid, e in self.progress_nodes.items()}
        self.send("progress_state", {"prompt_id": prompt_id, "nodes": nodes})

    def prompt_params(self, prompt):
        a = self.args
        p = {"steps": a.steps, "step_ms": a.step_ms, "peak_mb": a.peak_mb, "leak_mb": a.leak_mb,
             "cache_leak_mb": a.cache_leak_mb, "node_leak_mb": a.node_leak_mb, "error_at_step": 0,
             "model_mb": a.model_mb, "model_load_step": 0, "worker_leak_mb": a.worker_leak_mb}
        controls = sim_control_nodes(prompt)
        sampler = None
        for nid, node in controls:
            inputs = node.get("inputs", {})
            if isinstance(inputs, dict):
                for k in SIM_CONTROL_LIMITS:
                    if k in inputs:
                        p[k] = inputs[k]
            sampler = nid
        if sampler is None:
            for nid, node in prompt.items():
                if isinstance(node, dict) and "KSampler" in str(node.get("class_type", "")):
                    sampler = nid
                    break
        nodes = list(prompt.keys())
        if not nodes:
            nodes = ["sim"]
        if sampler is None:
            sampler = nodes[-1]
        p["steps"] = int(p["steps"])
        p["error_at_step"] = int(p["error_at_step"])
        p["model_load_step"] = min(int(p["model_load_step"]), p["steps"])
        p["loader"], p["ckpt"] = None, "default"
        for nid, node in prompt.items():
            if isinstance(node, dict) and node.get("class_type") in LOADER_NODE_INPUTS:
                inputs = node.get("inputs")
                name = inputs.get(LOADER_NODE_INPUTS[node["class_type"]]) if isinstance(inputs, dict) else None
                p["loader"], p["ckpt"] = nid, name if isinstance(name, str) and name else "default"
                break
        p["nodes"] = nodes
        p["sampler"] = sampler
        return p

    def crash(self, step, steps):
        mode = self.args.crash_mode
        log("simulated crash (%s) at generation %d step %d/%d rss=%.0fMiB"
            % (mode, self.generation, step, steps, mib(rss_bytes())))
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        if mode in ("segv", "abort"):
            # Die by the signal, as a real crash does; no core file littering the working directory.
            try:
                resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
            except (ValueError, OSError):
                pass
            try:
                import faulthandler
                faulthandler.disable()
            except Exception:
                pass
        if mode == "exit0":
            os._exit(0)
        if mode == "exit1":
            os._exit(1)
        if mode == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
            time.sleep(5)
        os.abort()

    def execute(self, item):
        """PromptExecutor.execute: returns (history status, history_result, record for the state file)."""
        number, prompt_id, prompt, extra_data, outputs = item
        with self.mutex:
            self.interrupt_flag = False
        self.client_id = extra_data["client_id"] if "client_id" in extra_data else None
        self.status_messages = []
        self.progress_nodes = {}    # reset_progress_state: a new registry per prompt
        self.generation += 1
        gen = self.generation
        p = self.prompt_params(prompt)
        steps = p["steps"]
        rss_start = rss_bytes()
        rss_peak = rss_start
        alloc = {"model": 0, "peak": 0, "leak": 0, "cache_leak": 0, "node_leak": 0, "worker_leak": 0}
        log("prompt %s start generation=%d steps=%d rss=%.0fMiB" % (prompt_id, gen, steps, mib(rss_start)))
        t0 = time.monotonic()

        self.add_message("execution_start", {"prompt_id": prompt_id}, broadcast=False)
        self.add_message("execution_cached", {"nodes": [], "prompt_id": prompt_id}, broadcast=False)
        executed = []
        success = False
        outcome = "error"
        node_id = p["nodes"][0]
        try:
            for i, node_id in enumerate(p["nodes"]):
                self.halt_if_stopping()
                self.check_interrupt()          # nodes.before_node_execution()
                self.node_progress(prompt_id, node_id, "running", 0.0, 1.0)
                if self.client_id is not None:
                    self.last_node_id = node_id
                    self.send("executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id},
                              self.client_id)
                if p["model_load_step"] == 0 and (node_id == p["loader"] or (p["loader"] is None and i == 0)):
                    self.load_model(p, prompt_id, alloc)
                    rss_peak = max(rss_peak, rss_bytes())
                if node_id == p["sampler"]:
                    rss_peak = self.sample(p, gen, prompt_id, node_id, alloc, rss_peak)
                    # ComfyUI frees a node's intermediates when the node returns (it keeps only its output, a
                    # small latent): the transient working set is gone before the nodes after the sampler run
                    # (VAE decode, SaveImage), not after the outputs are saved
                    for region in self.take_peak_regions():
                        region.release()
                executed.append(node_id)
                self.node_progress(prompt_id, node_id, "finished")
            self.save_outputs(prompt, outputs, prompt_id)
            success = True
            outcome = "success"
            self.add_message("execution_success", {"prompt_id": prompt_id}, broadcast=False)
        except Interrupted:
            outcome = "interrupted"
            self.add_message("execution_interrupted",
                             {"prompt_id": prompt_id, "node_id": node_id, "node_type": self.class_type(prompt, node_id),
                              "executed": list(executed)}, broadcast=True)
        except Exception as e:
            if isinstance(e, NodeFailure):
                etype, emsg, tb = e.exception_type, e.message, []
            else:
                etype, emsg = type(e).__name__, str(e)
                tb = traceback.format_tb(e.__traceback__)
                elog("unexpected error in prompt %s: %s" % (prompt_id, "".join(traceback.format_exception(e))))
            self.add_message("execution_error",
                             {"prompt_id": prompt_id, "node_id": node_id, "node_type": self.class_type(prompt, node_id),
                              "executed": list(executed), "exception_message": emsg, "exception_type": etype,
                              "traceback": tb, "current_inputs": {}, "current_outputs": []}, broadcast=False)
        finally:
            # An interrupted or failed sampler's transient working set dies with the prompt.
            for region in self.take_peak_regions():
                region.release()
        self.last_node_id = None
        rss_end = rss_bytes()
        seconds = time.monotonic() - t0
        record = {"event": "prompt", "prompt_id": prompt_id, "number": number, "status": outcome,
                  "generation": gen, "steps": steps, "seconds": round(seconds, 3),
                  "rss_start_bytes": rss_start, "rss_peak_bytes": max(rss_peak, rss_end), "rss_end_bytes": rss_end,
                  "allocated_mib": {k: round(mib(v), 3) for k, v in alloc.items()},
                  "time": time.time()}
        log("prompt %s end status=%s generation=%d rss=%.0fMiB peak=%.0fMiB seconds=%.2f"
            % (prompt_id, outcome, gen, mib(rss_end), mib(record["rss_peak_bytes"]), seconds))
        history_result = {"outputs": {}, "meta": {}}
        status = {"status_str": "success" if success else "error", "completed": success,
                  "messages": self.status_messages}
        return status, history_result, record

    def save_outputs(self, prompt, outputs, prompt_id):
        """SaveImage: one line per saved output in OUTPUT_DIR/outputs.log, appended in one write, with the node's
        filename_prefix -- what a client gets back. Across server restarts the log tells how many times each
        prompt's result was really produced (never, once, twice)."""
        self.halt_if_stopping()
        directory = self.args.output_directory
        if not directory:
            return
        lines = []
        for nid in outputs:
            node = prompt.get(nid)
            if isinstance(node, dict) and node.get("class_type") == "SaveImage":
                inputs = node.get("inputs") if isinstance(node.get("inputs"), dict) else {}
                prefix = inputs.get("filename_prefix", "ComfyUI")
                lines.append(json.dumps({"filename_prefix": str(prefix), "prompt_id": prompt_id,
                                         "pid": os.getpid(), "time": time.time()}) + "\n")
        if not lines:
            return

        def write():
            fd = os.open(os.path.join(directory, "outputs.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, "".join(lines).encode())
            finally:
                os.close(fd)
        try:
            saved = self.commit(write)
        except OSError as e:
            raise NodeFailure("OSError", "cannot save output: %s" % e)
        if not saved:
            self.halt()     # killed before the save: the output never exists

    def idle_growth(self, mib_per_s):
        """--idle-leak-mb-per-s: memory that grows while nothing runs (a custom node's background thread, a
        preview or file-watcher cache) and that only a restart gives back."""
        tick = 0.05
        while True:
            time.sleep(tick)
            with self.mutex:
                idle = not self.queue and not self.currently_running
            if not idle or self.gone():
                continue
            r = new_region(int(mib_per_s * tick * MIB), "idle leak")
            try:
                r.touch_all()
            except (OSError, MemoryError):
                r.release()
                continue
            self.mem.add_leak("node", r)

    def load_model(self, p, prompt_id, alloc):
        self.halt_if_stopping()
        try:
            loaded = self.mem.ensure_model(p["ckpt"], int(p["model_mb"] * MIB))
        except (OSError, MemoryError) as e:
            raise NodeFailure("RuntimeError", "[enforce fail at alloc_cpu.cpp:114] data. "
                              "DefaultCPUAllocator: not enough memory: %s" % e)
        alloc["model"] += loaded
        if loaded:
            log("prompt %s loaded model %s %.0fMiB" % (prompt_id, p["ckpt"], mib(loaded)))

    _peak_regions = None

    def take_peak_regions(self):
        regions = self._peak_regions or []
        self._peak_regions = None
        return regions

    @staticmethod
    def class_type(prompt, node_id):
        node = prompt.get(node_id) if isinstance(prompt, dict) else None
        return node.get("class_type") if isinstance(node, dict) else None

    def sample(self, p, gen, prompt_id, node_id, alloc, rss_peak):
        """The KSampler: step_ms per step; peak and leaks grow linearly with the step index, so memory
        pressure (and an OOM) arrives mid-progress like in a real sampler."""
        steps = p["steps"]
        sizes = {"peak": p["peak_mb"], "leak": p["leak_mb"], "cache_leak": p["cache_leak_mb"],
                 "node_leak": p["node_leak_mb"]}
        regions = {}
        self._peak_regions = []
        try:
            for name, size_mb in sizes.items():
                if size_mb > 0:
                    r = new_region(int(size_mb * MIB), name)
                    regions[name] = r
                    if name == "peak":
                        self._peak_regions.append(r)
                    else:
                        # Kept from the first page on: an interrupted generation still leaks what it touched.
                        self.mem.add_leak({"leak": "model", "cache_leak": "cache", "node_leak": "node"}[name], r)
        except (OSError, MemoryError) as e:
            raise NodeFailure("RuntimeError", "DefaultCPUAllocator: can't allocate memory: %s" % e)
        crash_step = 0
        if self.args.crash_at_generation and gen == self.args.crash_at_generation:
            crash_step = max(1, (steps + 1) // 2)
        worker_leak = int(p["worker_leak_mb"] * MIB)
        for step in range(1, steps + 1):
            if p["step_ms"] > 0:
                time.sleep(p["step_ms"] / 1000.0)
            self.halt_if_stopping()
            if step == p["model_load_step"]:
                self.load_model(p, prompt_id, alloc)
            try:
                for name, r in regions.items():
                    r.touch_to(r.size * step // steps)
            except (OSError, MemoryError) as e:
                raise NodeFailure("RuntimeError", "DefaultCPUAllocator: can't allocate memory: %s" % e)
            if worker_leak:
                part = worker_leak * step // steps - worker_leak * (step - 1) // steps
                alloc["worker_leak"] += self.leak_worker().grow(part)
            for name, r in regions.items():
                alloc[name] = r.touched
            rss_peak = max(rss_peak, rss_bytes())
            if step == crash_step:
                self.crash(step, steps)
            if step == p["error_at_step"]:
                raise NodeFailure("RuntimeError", "simulated node error at step %d/%d" % (step, steps))
            self.check_interrupt()      # comfy.utils progress hook: throw_exception_if_processing_interrupted
            self.node_progress(prompt_id, node_id, "running", float(step), float(steps))
            self.send("progress", {"value": step, "max": steps, "prompt_id": prompt_id, "node": node_id},
                      self.client_id)
        return rss_peak

    def write_state(self, record):
        path = self.args.state_file
        if not path:
            return
        line = json.dumps(record) + "\n"
        with self.state_lock:
            try:
                with open(path, "a") as f:
                    f.write(line)
            except OSError as e:
                elog("cannot write state file %s: %s" % (path, e))

    def prompt_worker(self):
        """main.py prompt_worker: one prompt at a time, then the /free flags, then gc at most every 10 s."""
        last_gc_collect = 0.0
        need_gc = False
        current_time = 0.0
        while True:
            timeout = 1000.0
            if need_gc:
                timeout = max(GC_COLLECT_INTERVAL_S - (current_time - last_gc_collect), 0.0)
            got = self.get(timeout)
            if got is not None:
                item, task_id = got
                self.last_prompt_id = item[1]
                try:
                    status, history_result, record = self.execute(item)
                except Exception as e:      # never lose the worker thread
                    elog("worker: %s" % "".join(traceback.format_exception(e)))
                    status = {"status_str": "error", "completed": False, "messages": self.status_messages}
                    history_result = {"outputs": {}, "meta": {}}
                    record = {"event": "prompt", "prompt_id": item[1], "status": "error", "time": time.time()}
                need_gc = True
                self.write_state(record)
                self.task_done(task_id, history_result, status)
                if self.client_id is not None:
                    self.send("executing", {"node": None, "prompt_id": item[1]}, self.client_id)
                current_time = time.perf_counter()

            flags = self.get_flags()
            free_memory = flags.get("free_memory", False)
            freed = {}
            if flags.get("unload_models", free_memory):
                freed["models"] = self.mem.unload_models()
                need_gc = True
                last_gc_collect = 0.0
            if free_memory:
                freed["cache"] = self.mem.reset_cache()
                need_gc = True
                last_gc_collect = 0.0
            if flags:
                rss_after = rss_bytes()
                log("free flags=%s freed models=%.0fMiB cache=%.0fMiB rss=%.0fMiB"
                    % (json.dumps(flags, sort_keys=True), mib(freed.get("models", 0)), mib(freed.get("cache", 0)),
                       mib(rss_after)))
                self.write_state({"event": "free", "flags": flags, "generation": self.generation,
                                  "freed_bytes": freed, "rss_end_bytes": rss_after, "time": time.time()})
            if need_gc:
                current_time = time.perf_counter()
                if (current_time - last_gc_collect) > GC_COLLECT_INTERVAL_S:
                    gc.collect()
                    last_gc_collect = current_time
                    need_gc = False

    def sim_state(self):
        s = self.mem.snapshot()
        with self.mutex:
            s.update({"generation": self.generation, "pending_flags": dict(self.flags),
                      "queue_remaining": len(self.queue) + len(self.currently_running)})
        lw = self.leak_worker_obj
        s.update({"pid": os.getpid(), "rss_bytes": rss_bytes(), "worker_pids": list(self.worker_pids),
                  "leak_worker_pid": lw.pid if lw is not None else None,
                  "leak_worker_bytes": lw.kept if lw is not None else 0})
        return s


# ---------------------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------------------

INDEX_HTML = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>ComfyUI (simulator)</title></head>
<body><h1>ComfyUI simulator</h1>
<p>This is oomsentry's stand-in for ComfyUI: the API routes (/prompt, /queue, /history, /free, /interrupt,
/system_stats, /ws) behave like ComfyUI's; there is no graph editor.</p></body></html>
"""

ROUTES = {
    "GET": ["/", "/ws", "/system_stats", "/prompt", "/queue", "/history", "/history/*", "/sim/state"],
    "POST": ["/prompt", "/queue", "/interrupt", "/free", "/history"],
}


def match_route(method, path):
    """Returns (route, param) or (None, None); aiohttp-like: /api/X is an alias of X except for /."""
    for m, routes in ROUTES.items():
        if method is not None and m != method:
            continue
        for r in routes:
            if r.endswith("/*"):
                prefix = r[:-1]
                if path.startswith(prefix) and len(path) > len(prefix) and "/" not in path[len(prefix):]:
                    return r, unquote(path[len(prefix):])
            elif r == path:
                return r, None
    return None, None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "comfy_sim/1"
    sim = None  # set on the subclass

    def log_message(self, fmt, *args):
        if self.sim.args.verbose:
            elog("%s %s" % (self.address_string(), fmt % args))

    # -- plumbing --

    def _reply(self, code, body=b"", ctype="application/json; charset=utf-8", extra_headers=()):
        if self.sim.gone():
            self.close_connection = True
            return
        try:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra_headers:
                self.send_header(k, v)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _json(self, code, obj):
        self._reply(code, json.dumps(obj).encode("utf-8"))

    def _empty(self, code=200):
        self._reply(code, b"", ctype="text/plain; charset=utf-8")

    def _text(self, code, text):
        self._reply(code, text.encode("utf-8"), ctype="text/plain; charset=utf-8")

    def _read_body(self):
        """Returns bytes, or None after replying with an error (the connection is then closed)."""
        te = self.headers.get("Transfer-Encoding", "")
        if te:
            if te.strip().lower() != "chunked":
                self.close_connection = True
                self._text(501, "501: Transfer-Encoding not supported")
                return None
            chunks = []
            total = 0
            try:
                while True:
                    line = self.rfile.readline(1024)
                    size = int(line.split(b";")[0].strip(), 16)
                    if size < 0:
                        raise ValueError("negative chunk")
                    if size == 0:
                        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    total += size
                    if total > MAX_BODY_BYTES:
                        self.close_connection = True
                        self._text(413, "413: Request Entity Too Large")
                        return None
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline(1024)
            except (ValueError, OSError):
                self.close_connection = True
                self._text(400, "400: bad chunked body")
                return None
            return b"".join(chunks)
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        try:
            n = int(cl)
            if n < 0:
                raise ValueError()
        except ValueError:
            self.close_connection = True
            self._text(400, "400: bad Content-Length")
            return None
        if n > MAX_BODY_BYTES:
            self.close_connection = True
            self._text(413, "413: Request Entity Too Large")
            return None
        body = self.rfile.read(n) if n else b""
        if len(body) != n:
            self.close_connection = True
            return None
        return body

    def _json_body(self, body, allow_empty=False):
        """Parsed JSON object; raises BadRequest. allow_empty: empty body -> {}."""
        if allow_empty and not body.strip():
            return {}
        try:
            obj = json.loads(body)
        except (ValueError, RecursionError) as e:
            raise BadRequest("Invalid JSON body", str(e)[:200], etype="invalid_json")
        if not isinstance(obj, dict):
            raise BadRequest("JSON body must be an object", type(obj).__name__, etype="invalid_json")
        return obj

    def _dispatch(self, method):
        body = self._read_body()
        if body is None:
            return
        if self.sim.gone():
            self.close_connection = True    # a killed ComfyUI neither acts on a request nor answers it
            return
        url = urlsplit(self.path)
        path = url.path
        if path.startswith("/api/"):
            path = path[4:]
        route, param = match_route(method, path)
        if route is None:
            if match_route(None, path)[0] is not None:
                self._text(405, "405: Method Not Allowed")
            else:
                self._text(404, "404: Not Found")
            return
        query = parse_qs(url.query, keep_blank_values=True)
        try:
            name = "route_%s_%s" % (method, route.strip("/").replace("/", "_").replace("*", "param"))
            getattr(self, name)(body, query, param)
        except BadRequest as e:
            if method == "POST" and route == "/prompt":
                out = e.body()
                out.setdefault("node_errors", {})
                self._json(400, out)
            else:
                self._json(400, e.body())
        except Exception as e:
            elog("500 on %s %s: %s" % (method, self.path, "".join(traceback.format_exception(e))))
            self._json(500, {"error": {"type": "internal", "message": str(e)}})

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _other(self):
        body = self._read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        if path.startswith("/api/"):
            path = path[4:]
        if match_route(None, path)[0] is not None:
            self._text(405, "405: Method Not Allowed")
        else:
            self._text(404, "404: Not Found")

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _other

    # -- routes --

    def route_GET_(self, body, query, param):
        self._reply(200, INDEX_HTML, ctype="text/html; charset=utf-8",
                    extra_headers=(("Cache-Control", "no-cache"),))

    def route_GET_system_stats(self, body, query, param):
        self._json(200, {
            "system": {
                "os": os.name,
                "ram_total": meminfo_bytes("MemTotal"),
                "ram_free": meminfo_bytes("MemAvailable"),
                "comfyui_version": SIM_VERSION,
                "python_version": sys.version,
                "pytorch_version": "sim",
                "embedded_python": False,
                "argv": sys.argv,
            },
            "devices": [{"name": "cpu", "type": "cpu", "index": None, "vram_total": 0, "vram_free": 0,
                         "torch_vram_total": 0, "torch_vram_free": 0}],
        })

    def route_GET_prompt(self, body, query, param):
        self._json(200, self.sim.queue_info())

    def route_GET_queue(self, body, query, param):
        running, pending = self.sim.get_current_queue()
        self._json(200, {"queue_running": running, "queue_pending": pending})

    def route_GET_history(self, body, query, param):
        max_items = offset = None
        try:
            if "max_items" in query:
                max_items = int(query["max_items"][-1])
            offset = int(query["offset"][-1]) if "offset" in query else -1
        except ValueError:
            raise BadRequest("max_items and offset must be integers", url_query(query))
        self._json(200, self.sim.get_history(max_items=max_items, offset=offset))

    def route_GET_history_param(self, body, query, param):
        self._json(200, self.sim.get_history(prompt_id=param))

    def route_GET_sim_state(self, body, query, param):
        self._json(200, self.sim.sim_state())

    def route_POST_prompt(self, body, query, param):
        data = self._json_body(body)
        self._json(200, self.sim.submit(data))

    def route_POST_queue(self, body, query, param):
        data = self._json_body(body)
        to_delete = data.get("delete", [])
        if not isinstance(to_delete, list):
            raise BadRequest("delete must be a list of prompt ids", type(to_delete).__name__)
        if data.get("clear"):
            self.sim.wipe_queue()
        for pid in to_delete:
            self.sim.delete_queue_item(pid)
        self._empty()

    def route_POST_history(self, body, query, param):
        data = self._json_body(body)
        to_delete = data.get("delete", [])
        if not isinstance(to_delete, list):
            raise BadRequest("delete must be a list of prompt ids", type(to_delete).__name__)
        if data.get("clear"):
            self.sim.wipe_history()
        for pid in to_delete:
            if isinstance(pid, str):
                self.sim.delete_history_item(pid)
        self._empty()

    def route_POST_interrupt(self, body, query, param):
        data = self._json_body(body, allow_empty=True)
        prompt_id = data.get("prompt_id")
        if prompt_id:
            running, _ = self.sim.get_current_queue()
            if any(len(item) > 1 and item[1] == prompt_id for item in running):
                self.sim.interrupt()
            elif self.sim.args.verbose:
                log("interrupt for %s ignored: not running" % prompt_id)
        else:
            self.sim.interrupt()
        self._empty()

    def route_POST_free(self, body, query, param):
        data = self._json_body(body)
        unload_models = data.get("unload_models", False)
        free_memory = data.get("free_memory", False)
        if unload_models:
            self.sim.set_flag("unload_models", unload_models)
        if free_memory:
            self.sim.set_flag("free_memory", free_memory)
        self._empty()

    def route_GET_ws(self, body, query, param):
        h = self.headers
        upgrade = h.get("Upgrade", "").lower()
        connection = [t.strip().lower() for t in h.get("Connection", "").split(",")]
        key = h.get("Sec-WebSocket-Key", "").strip()
        if upgrade != "websocket" or "upgrade" not in connection:
            self._text(400, "400: Bad Request (expected a websocket upgrade)")
            return
        if h.get("Sec-WebSocket-Version", "").strip() != "13":
            self._reply(426, b"426: Upgrade Required", ctype="text/plain; charset=utf-8",
                        extra_headers=(("Sec-WebSocket-Version", "13"),))
            return
        try:
            if len(base64.b64decode(key, validate=True)) != 16:
                raise ValueError()
        except ValueError:
            self._text(400, "400: Bad Request (bad Sec-WebSocket-Key)")
            return
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode("ascii")).digest()).decode("ascii")
        self.close_connection = True
        try:
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.end_headers()
            self.wfile.flush()
        except OSError:
            return
        sid = (query.get("clientId") or [""])[-1] or uuid.uuid4().hex
        client = WSClient(self.connection, sid, self.sim.gone)
        sim = self.sim
        # The first frame a client sees is its own status with the sid, as ComfyUI does.
        client.send_json("status", {"status": sim.queue_info(), "sid": sid})
        sim.ws_register(client)
        if sim.client_id == sid and sim.last_node_id is not None:
            client.send_json("executing", {"node": sim.last_node_id})
        try:
            self._ws_read_loop(client)
        finally:
            sim.ws_unregister(client)
            client.close()
            client.writer.join(timeout=2.0)
            client.abort()

    def _read_exact(self, n):
        data = self.rfile.read(n) if n else b""
        if len(data) != n:
            raise EOFError()
        return data

    def _ws_read_loop(self, client):
        fragments = None
        frag_opcode = 0
        while True:
            try:
                b0, b1 = self._read_exact(2)
                fin = b0 & 0x80
                opcode = b0 & 0x0F
                if b0 & 0x70:
                    raise WSProtocolError(1002, "reserved bits set")
                if not b1 & 0x80:
                    raise WSProtocolError(1002, "client frames must be masked")
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", self._read_exact(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", self._read_exact(8))[0]
                if opcode >= 0x8:
                    if not fin or n > 125:
                        raise WSProtocolError(1002, "bad control frame")
                elif opcode not in (0x0, 0x1, 0x2):
                    raise WSProtocolError(1002, "unknown opcode %d" % opcode)
                if n > WS_MAX_MESSAGE_BYTES:
                    raise WSProtocolError(1009, "message too big")
                mask = self._read_exact(4)
                payload = ws_unmask(self._read_exact(n), mask)
            except (EOFError, OSError, ValueError):
                return
            except WSProtocolError as e:
                client.close(struct.pack("!H", e.code) + str(e).encode()[:120])
                return
            if opcode == 0x8:
                if len(payload) >= 2:
                    code = struct.unpack("!H", payload[:2])[0]
                    client.close(struct.pack("!H", code))
                else:
                    client.close(b"")
                return
            if opcode == 0x9:
                client.send_control(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if opcode == 0x0:
                if fragments is None:
                    client.close(struct.pack("!H", 1002))
                    return
                fragments.append(payload)
            else:
                if fragments is not None:
                    client.close(struct.pack("!H", 1002))
                    return
                fragments = [payload]
                frag_opcode = opcode
            if sum(len(f) for f in fragments) > WS_MAX_MESSAGE_BYTES:
                client.close(struct.pack("!H", 1009))
                return
            if fin:
                message = b"".join(fragments)
                fragments = None
                if frag_opcode == 0x1:
                    try:
                        message.decode("utf-8")
                    except UnicodeDecodeError:
                        client.close(struct.pack("!H", 1007))
                        return
                # Client messages (ComfyUI's feature_flags handshake, ...) carry nothing the sim needs.


def url_query(query):
    return "&".join("%s=%s" % (k, v[-1]) for k, v in query.items())


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True


class Server6(Server):
    address_family = socket.AF_INET6


# ---------------------------------------------------------------------------------------------------------
# Worker processes (the orphan scenario)
# ---------------------------------------------------------------------------------------------------------

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def describe_pid(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()[:200] or "?"
    except OSError:
        return "gone"


def run_worker(worker_mb):
    """A child that holds worker_mb of real memory and idles; exits on SIGTERM (default action) and, on
    purpose, NOT when its parent dies: no PR_SET_PDEATHSIG, no daemon semantics."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    set_comm()
    region = Region(int(worker_mb * MIB), "worker")
    region.touch_all()
    while True:
        time.sleep(3600)


class SpawnedWorker:
    """A multiprocessing "spawn" child, as ComfyUI custom nodes and launchers start them (their command line says
    multiprocessing.spawn), with the subprocess.Popen methods the shutdown path uses."""

    def __init__(self, worker_mb):
        self.proc = multiprocessing.get_context("spawn").Process(target=run_worker, args=(worker_mb,), daemon=False)
        self.proc.start()
        self.pid = self.proc.pid

    def terminate(self):
        self.proc.terminate()

    def kill(self):
        self.proc.kill()

    def wait(self, timeout=None):
        self.proc.join(timeout)
        if self.proc.exitcode is None:
            raise subprocess.TimeoutExpired("worker", timeout)
        return self.proc.exitcode


def run_leak_worker(conn):
    """A custom node's worker process (multiprocessing spawn) that keeps what every job gave it: its leak
    lives in another process than the server's. It ends when the server closes the pipe -- a graceful exit
    or the server's death, as a pool worker's blocking read ends -- and so never outlives the server."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    set_comm()
    kept = []
    while True:
        try:
            n = conn.recv()
        except (EOFError, OSError):
            os._exit(0)
        r = Region(n, "worker leak")
        r.touch_all()
        kept.append(r)
        conn.send(r.touched)


class LeakWorker:
    def __init__(self):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=run_leak_worker, args=(child,), daemon=False)
        self.proc.start()
        child.close()
        self.pid = self.proc.pid
        self.kept = 0

    def alive(self):
        return self.proc.is_alive()

    def grow(self, nbytes):
        if nbytes <= 0:
            return 0
        try:
            self.conn.send(nbytes)
            got = self.conn.recv()
        except (EOFError, OSError) as e:
            raise NodeFailure("RuntimeError", "custom node worker pid %d died: %s" % (self.pid, e))
        self.kept += got
        return got

    def terminate(self):
        try:
            self.conn.close()
        except OSError:
            pass
        self.proc.terminate()

    def kill(self):
        self.proc.kill()

    def wait(self, timeout=None):
        self.proc.join(timeout)
        if self.proc.exitcode is None:
            raise subprocess.TimeoutExpired("leak worker", timeout)
        return self.proc.exitcode


def spawn_workers(n, worker_mb):
    return [SpawnedWorker(worker_mb) for _ in range(n)]


# ---------------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------------

def nonneg_float(s):
    v = float(s)
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError("must be a finite number >= 0")
    return v


def nonneg_int(s):
    v = int(s)
    if v < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return v


def pos_int(s):
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return v


def parse_args(argv):
    ap = argparse.ArgumentParser(description="ComfyUI API simulator with real memory (oomsentry tests/demo)")
    ap.add_argument("--port", type=nonneg_int, default=8188, help="0 picks a free port (printed at start)")
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--model-mb", type=nonneg_float, default=500.0,
                    help="loaded by the first prompt, resident until /free unloads it")
    ap.add_argument("--peak-mb", type=nonneg_float, default=400.0,
                    help="transient working set per generation, grows with the step index, freed at the end")
    ap.add_argument("--leak-mb", type=nonneg_float, default=300.0,
                    help="kept per generation, attached to the model (unload_models frees it)")
    ap.add_argument("--cache-leak-mb", type=nonneg_float, default=0.0,
                    help="kept per generation, freed by free_memory (executor cache reset)")
    ap.add_argument("--node-leak-mb", type=nonneg_float, default=0.0,
                    help="kept per generation forever (custom node leak): only a restart frees it")
    ap.add_argument("--worker-leak-mb", type=nonneg_float, default=0.0,
                    help="kept per generation by a custom node's worker process: only its exit frees it")
    ap.add_argument("--idle-leak-mb-per-s", type=nonneg_float, default=0.0,
                    help="grows while idle (no prompt queued or running), freed only by a restart")
    ap.add_argument("--output-directory", help="SaveImage appends each saved output to DIR/outputs.log")
    ap.add_argument("--torch", action="store_true",
                    help="hold every model, working set and leak in PyTorch CPU tensors (needs python3-torch)")
    ap.add_argument("--steps", type=pos_int, default=20)
    ap.add_argument("--step-ms", type=nonneg_float, default=100.0)
    ap.add_argument("--crash-at-generation", type=nonneg_int, default=0, metavar="N",
                    help="die half-way through generation N (0: never)")
    ap.add_argument("--crash-mode", choices=("exit0", "exit1", "segv", "abort"), default="exit1")
    ap.add_argument("--workers", type=nonneg_int, default=0, help="child python3 processes holding --worker-mb")
    ap.add_argument("--worker-mb", type=nonneg_float, default=100.0)
    ap.add_argument("--pid-file")
    ap.add_argument("--state-file", help="JSON lines: one per finished prompt and per consumed /free")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--ignore-sigterm", action="store_true", help="SIGTERM is ignored: only SIGKILL stops the server")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    set_comm()
    if args.worker:
        run_worker(args.worker_mb)
        return 0

    if args.torch:
        try:
            use_torch()
        except ImportError as e:
            elog("--torch: %s (apt-get install python3-torch)" % e)
            return 1
    sim = Sim(args)
    handler = type("SimHandler", (Handler,), {"sim": sim})
    server_cls = Server6 if ":" in args.listen else Server
    try:
        httpd = server_cls((args.listen, args.port), handler)
    except OSError as e:
        elog("cannot listen on %s:%d: %s" % (args.listen, args.port, e))
        return 1
    port = httpd.server_address[1]

    # SIGTERM and SIGINT are taken with sigtimedwait(), which says who sent them: when a server is stopped in a
    # test, the log must tell oomsentry's stop from anybody else's. Blocked before any thread or worker starts
    # (the workers unblock them again: a mask survives exec). multiprocessing unblocks them in the thread that
    # starts a worker (its resource tracker), so that thread blocks them again; a signal that lands in that
    # window goes to the handler, which stops the same way without knowing the sender.
    stop = threading.Event()
    stop_signal = []

    def on_signal(signo, _frame):
        sim.stopping.set()
        stop_signal.append(signo)
        stop.set()

    # --ignore-sigterm: a server stuck in a C extension that never sees SIGTERM (only SIGKILL stops it): ignored,
    # and taken out of the stop signals (a blocked signal is queued even when ignored, and sigtimedwait takes it)
    global STOP_SIGNALS
    if args.ignore_sigterm:
        STOP_SIGNALS = {signal.SIGINT}
    signal.signal(signal.SIGTERM, signal.SIG_IGN if args.ignore_sigterm else on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    if args.pid_file:
        try:
            tmp = args.pid_file + ".tmp.%d" % os.getpid()
            with open(tmp, "w") as f:
                f.write("%d\n" % os.getpid())
            os.replace(tmp, args.pid_file)
        except OSError as e:
            elog("cannot write pid file %s: %s" % (args.pid_file, e))
            return 1

    workers = spawn_workers(args.workers, args.worker_mb) if args.workers else []
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    sim.worker_pids = [w.pid for w in workers]

    threading.Thread(target=sim.prompt_worker, name="prompt_worker", daemon=True).start()
    if args.idle_leak_mb_per_s > 0:
        threading.Thread(target=sim.idle_growth, args=(args.idle_leak_mb_per_s,), name="idle", daemon=True).start()
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="http", daemon=True).start()

    host = "[%s]" % args.listen if ":" in args.listen else args.listen
    log("pid=%d listening on http://%s:%d model=%gMiB peak=%gMiB leak=%gMiB cache_leak=%gMiB node_leak=%gMiB "
        "steps=%d step_ms=%g crash_at_generation=%d crash_mode=%s workers=%s"
        % (os.getpid(), host, port, args.model_mb, args.peak_mb, args.leak_mb, args.cache_leak_mb,
           args.node_leak_mb, args.steps, args.step_ms, args.crash_at_generation, args.crash_mode,
           ",".join(str(p) for p in sim.worker_pids) or "none"))
    log("To see the GUI go to: http://%s:%d" % (host, port))

    # The signal is taken under the gate, so that gone() sees it either pending or taken; a short poll rather
    # than one long wait, which would take it outside the gate.
    info = None
    # a SIGSTOP/SIGCONT of the whole process ends the wait with no signal (si_signo 0): that is no stop
    while (info is None or not info.si_signo) and not stop.is_set():
        with sim.gate:
            info = signal.sigtimedwait(STOP_SIGNALS, 0)
            if info is not None and info.si_signo:
                sim.stopping.set()
        if info is None or not info.si_signo:
            stop.wait(0.02)
    sim.stopping.set()
    if info is not None and info.si_signo:
        log("got %s, shutting down; sent by pid %d (%s)" % (signal.Signals(info.si_signo).name, info.si_pid,
                                                            describe_pid(info.si_pid)))
    else:
        log("got %s, shutting down" % signal.Signals(stop_signal[0]).name)
    httpd.shutdown()
    httpd.server_close()
    sim.ws_close_all()
    # A graceful exit takes its children with it; only a crash leaves orphans behind.
    if sim.leak_worker_obj is not None:
        workers.append(sim.leak_worker_obj)
    for w in workers:
        try:
            w.terminate()
        except OSError:
            pass
    deadline = time.monotonic() + 3.0
    for w in workers:
        try:
            w.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.kill()
    if args.pid_file:
        try:
            with open(args.pid_file) as f:
                mine = f.read().strip() == str(os.getpid())
            if mine:
                os.unlink(args.pid_file)
        except OSError:
            pass
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    # Daemon threads may sit in a prompt; skip interpreter teardown, which would wait on nothing useful.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
