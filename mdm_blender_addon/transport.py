"""Transports to the backend: a worker thread in Blender's own Python, or a warm subprocess speaking JSON lines
(docs/protocol.md). bpy-free: events arrive on a queue that the main thread drains (jobs.py); only the main
thread ever touches bpy.
"""
import importlib.util
import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

PROTOCOL_VERSION = 1
# Events that answer a request (docs/protocol.md): after one of them the request is over.
ANSWER_EVENTS = ("result", "info", "hello", "error", "cancelled", "bye")
HANDSHAKE_TIMEOUT_S = 60.0  # a cold start imports torch (seconds; more on a first CUDA initialisation)
LOG_TAIL_LINES = 5  # the backend's last log lines, quoted when it fails to start
EXTENSION_DIR = Path(__file__).resolve().parent  # holds the bundled `backend/` package


class TransportError(Exception):
    """The backend could not run the request (crashed, hung, spoke garbage, wrong protocol)."""


class Job:
    """One request in flight: events arrive on `events`; `cancel()` asks the backend to stop."""

    def __init__(self, request_id, cancel):
        self.id = request_id
        self.events = queue.Queue()
        self._cancel = cancel
        self.heard = time.monotonic()  # when the backend last said something about it (the timeout counts from here)

    def cancel(self):
        self._cancel()


def python_command(python) -> str:
    """The backend Python to run: this one by default; a path made absolute (the process starts in another
    folder), a bare command name left to PATH."""
    if not python:
        return sys.executable
    return str(Path(python).absolute()) if os.path.sep in str(python) else str(python)


def torch_importable() -> bool:
    """Whether torch is installed in this Python (a cheap check: nothing is imported)."""
    return importlib.util.find_spec("torch") is not None


class InProcessTransport:
    """Runs the backend service in a worker thread of this process (torch imported there, never at add-on load)."""

    def __init__(self):
        self._service = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # one request at a time, in order (as the stdio server runs them)
        self._running = []  # (thread, cancel event) of every submitted request

    def submit(self, request: dict) -> Job:
        cancelled = threading.Event()
        job = Job(next(self._ids), cancelled.set)
        request = {**request, "id": job.id}
        thread = threading.Thread(target=self._run, args=(request, job, cancelled), name="mdm-backend", daemon=True)
        self._running = [(t, c) for t, c in self._running if t.is_alive()] + [(thread, cancelled)]
        thread.start()
        return job

    def _run(self, request, job, cancelled):
        with self._lock:
            if cancelled.is_set():  # cancelled while waiting for the request before it
                job.events.put({"id": job.id, "event": "cancelled"})
                return
            try:
                if self._service is None:
                    from .backend.service import Service

                    self._service = Service()
                self._service.handle(request, job.events.put, cancelled.is_set)
            except Exception as err:  # e.g. torch failing to import inside Blender
                job.events.put({"id": job.id, "event": "error", "kind": "internal",
                                "message": f"{type(err).__name__}: {err}"})

    def check_timeouts(self):
        """A thread cannot be killed: the in-process backend has no timeout (cancel stops it between steps)."""

    def close(self, wait_s=30.0):
        """Cancel what runs and wait for the worker threads: a thread left running hangs Blender at exit."""
        for thread, cancelled in self._running:
            cancelled.set()
        for thread, _ in self._running:
            thread.join(wait_s)
        self._running = []
        self._service = None


class SubprocessTransport:
    """`PYTHON -m backend.server` (the stdio server), started on first use, kept warm, restarted after a crash."""

    def __init__(self, python, timeout_s=600.0, backend_dir=EXTENSION_DIR):
        self.python = python_command(python)
        self.timeout_s = timeout_s
        self.backend_dir = Path(backend_dir)
        self._process = None
        self._ids = itertools.count(1)
        self._jobs = {}
        self._lock = threading.Lock()  # guards _jobs
        self._start_lock = threading.Lock()  # one start at a time; requests are written in submit order
        self._write_lock = threading.Lock()
        self._hello = None  # the handshake's answer arrives here (or an error, if the process dies first)
        self._handshaken = False
        self._cancelled = set()  # ids whose cancel may have come before the request reached the backend
        self._log_tail = deque(maxlen=LOG_TAIL_LINES)
        self._threads = []

    # ------------------------------------------------------------------ process life
    def _start(self):
        if os.path.sep in str(self.python) and not Path(self.python).exists():
            raise TransportError(f"backend Python {self.python} does not exist: set it in the add-on preferences")
        env = {**os.environ, "PYTHONPATH": str(self.backend_dir), "PYTHONUNBUFFERED": "1"}
        try:
            # Bytes that are not UTF-8 (a C library's log) must neither stop the log reader nor the event reader.
            self._process = subprocess.Popen(
                [self.python, "-m", "backend.server"], cwd=self.backend_dir, env=env, text=True, encoding="utf-8",
                errors="replace", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=1)
        except OSError as err:
            raise TransportError(f"cannot start the backend with {self.python}: {err}") from None
        self._hello, self._handshaken = queue.Queue(), False
        self._log_tail.clear()
        self._threads = [threading.Thread(target=target, args=(self._process,), name=name, daemon=True)
                         for target, name in ((self._read_events, "mdm-backend-events"),
                                              (self._drain_stderr, "mdm-backend-log"))]
        for thread in self._threads:
            thread.start()
        self._send({"id": "hello", "op": "hello"})
        try:
            hello = self._hello.get(timeout=HANDSHAKE_TIMEOUT_S)
        except queue.Empty:
            self._kill()
            raise TransportError(f"the backend ({self.python}) did not answer the handshake within "
                                 f"{HANDSHAKE_TIMEOUT_S:.0f} s") from None
        if hello.get("event") == "error":  # the process died, printed garbage or failed before answering
            self._kill()
            log = " | ".join(line.strip() for line in self._log_tail if line.strip())
            raise TransportError(f"the backend ({self.python}) failed to start: {hello['message']}"
                                 + (f" [its log ends: {log}]" if log else "")
                                 + ". Its Python needs torch: set one in the add-on preferences (Python)")
        if hello.get("event") != "hello" or hello.get("protocol") != PROTOCOL_VERSION:
            self._kill()
            raise TransportError(f"the backend speaks protocol {hello.get('protocol')!r}, this add-on speaks "
                                 f"{PROTOCOL_VERSION}: {hello.get('message', '')}")
        self._handshaken = True

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _send(self, message):
        process = self._process
        if process is None:
            raise TransportError("the backend process is not running")
        try:
            with self._write_lock:
                process.stdin.write(json.dumps(message) + "\n")
                process.stdin.flush()
        except (OSError, ValueError) as err:
            raise TransportError(f"the backend process is gone: {err}") from None

    def _kill(self):
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()

    def close(self):
        """Ask the backend to exit (kill it if it does not), fail what is pending, and join the reader threads."""
        if self.alive():
            try:
                self._send({"id": "bye", "op": "shutdown"})
                self._process.wait(timeout=5)
            except (TransportError, subprocess.TimeoutExpired):
                pass
        self._crash("the backend was closed")
        for thread in self._threads:
            thread.join(5)
        self._threads = []

    # ------------------------------------------------------------------ requests
    def submit(self, request: dict) -> Job:
        """Queue `request`; the process is started (and the request written) by a short-lived thread, so the
        caller (Blender's main thread) never waits for torch to import. Start failures arrive as error events."""
        rid = next(self._ids)
        job = Job(rid, lambda: self._cancel(rid))
        with self._lock:
            self._jobs[rid] = job
        threading.Thread(target=self._deliver, args=(job, {**request, "id": rid}), name="mdm-backend-start",
                         daemon=True).start()
        return job

    def _deliver(self, job, request):
        try:
            with self._start_lock:
                if not self.alive() and not self._cancelled_before_sent(job):
                    self._start()
                if not self._cancelled_before_sent(job):  # a cancel during the start could not be sent
                    self._send(request)
        except TransportError as err:
            self._answer(job, {"id": job.id, "event": "error", "kind": "transport", "message": str(err)})

    def _cancelled_before_sent(self, job) -> bool:
        """Answer `job` as cancelled if it was, before its request was written; whether it was."""
        with self._lock:
            cancelled = job.id in self._cancelled
        if cancelled:
            self._answer(job, {"id": job.id, "event": "cancelled"})
        return cancelled

    def _answer(self, job, event):
        """Give `job` its final event from this side (the backend never saw the request)."""
        with self._lock:
            self._jobs.pop(job.id, None)
            self._cancelled.discard(job.id)
        job.events.put(event)

    def _cancel(self, rid):
        with self._lock:
            if rid not in self._jobs:  # already answered
                return
            self._cancelled.add(rid)  # seen by `_deliver` if the request has not been written yet
        if self.alive():
            try:
                self._send({"op": "cancel", "target": rid})
            except TransportError:
                pass

    def check_timeouts(self):
        """Fail (and kill the backend for) any job the backend has said nothing about for the timeout (a hang: a
        long generation reports progress every step); called from the job engine's tick."""
        with self._lock:
            late = [job for job in self._jobs.values() if time.monotonic() - job.heard > self.timeout_s]
        if late:
            self._crash(f"the backend said nothing for {self.timeout_s:.0f} s (no progress); it was stopped")

    def _crash(self, message):
        """Fail every pending job with `message` and stop the process; the next submit starts a fresh one."""
        with self._lock:
            jobs, self._jobs = list(self._jobs.values()), {}
            self._cancelled.clear()
        for job in jobs:
            job.events.put({"id": job.id, "event": "error", "kind": "transport", "message": message})
        if self._hello is not None:
            self._hello.put({"event": "error", "message": message})
        self._kill()

    def _read_events(self, process):
        """Reader thread: decode each stdout line (arrays too: off the main thread) and route it to its job."""
        from .backend.server import decode

        for line in process.stdout:
            try:
                event = decode(json.loads(line))
                if not isinstance(event, dict) or "event" not in event:
                    raise ValueError("not an event object")
            except ValueError:
                self._crash(f"the backend printed something that is not protocol: {line[:200]!r}")
                return
            if event.get("id") == "hello":
                self._hello.put(event)
                continue
            with self._lock:
                job = self._jobs.get(event.get("id"))
                if job is not None and event["event"] in ANSWER_EVENTS:
                    del self._jobs[event["id"]]
                    self._cancelled.discard(event["id"])
            if job is not None:
                job.heard = time.monotonic()
                job.events.put(event)
        if process is self._process:
            code = process.wait()
            if not self._handshaken:  # `_start` reports it, with the log's last lines, to the job it starts for
                self._hello.put({"event": "error", "message": f"the process exited (code {code})"})
                return
            self._crash(f"the backend process exited (code {code}); see the console for its log")

    def _drain_stderr(self, process):
        """Forward the backend's log to Blender's console (and keep the pipe from filling up)."""
        for line in process.stderr:
            self._log_tail.append(line)
            sys.stderr.write(f"[mdm backend] {line}")


# --- one warm transport per kind for the whole Blender session ----------------------------------------------------
_SHARED = {}


def shared(kind: str, python=None, timeout_s=600.0):
    """The session's transport of `kind` ('IN_PROCESS' | 'SUBPROCESS'), kept warm between requests. A subprocess
    transport is replaced when its Python changes (the old process is closed); a new timeout applies to it as it
    is, loaded model and all."""
    if kind == "IN_PROCESS":
        return _SHARED.setdefault(kind, InProcessTransport())
    current = _SHARED.get(kind)
    if current is not None and current.python != python_command(python):
        # Closed off the main thread: a hung old backend takes seconds to give up (then it is killed).
        threading.Thread(target=current.close, name="mdm-backend-close", daemon=True).start()
        current = None
    if current is None:
        current = _SHARED[kind] = SubprocessTransport(python, timeout_s)
    current.timeout_s = timeout_s
    return current


def close_all():
    """Stop every shared transport (on unregister): no thread or process may outlive the add-on."""
    while _SHARED:
        _SHARED.popitem()[1].close()
