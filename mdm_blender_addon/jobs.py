"""The main-thread side of a backend job: drain its events in short ticks, keep progress, finish exactly once.

bpy-free, so tests tick it directly. The modal operator (operators.py) calls `tick()` from a window timer;
scripts and background mode call `run_to_end()`. A result goes through `prepare(event)` on a worker thread first
(numpy work such as retargeting, which must not stall the UI), then `on_result(prepared)` on the main thread, the
only place that writes to the scene. A cancelled or failed job writes nothing. A job may name the job that
follows it once it is done (`then`: e.g. loading the model before a generation): `run_to_end` runs the chain, and
the modal operator starts each next job from its timer.
"""
import queue
import threading
import time


class BackendJob:
    def __init__(self, transport, request: dict, on_result, prepare=None, label="", tick_budget_s=0.005, then=None):
        self.transport = transport
        self.request = request
        self.on_result = on_result
        self.prepare = prepare
        self.then = then  # () -> the next BackendJob, built once this one is done (may raise UserError)
        self.label = label or request.get("op", "job")
        self.tick_budget_s = tick_budget_s
        self.job = None
        self.state = "pending"  # pending -> running -> done | failed | cancelled
        self.message = ""
        self.done_steps, self.total_steps = 0, 0
        self.longest_tick_s = 0.0  # wall time, what the user feels
        self.longest_tick_cpu_s = 0.0  # the main thread's own CPU time: what a busy machine does not inflate
        self.ticks = 0
        self.events_seen = []  # event kinds in arrival order (what the UI and the tests follow)
        self._cancel_requested = False
        self._prepared = None  # queue of the worker's (ok, value) once a result is being prepared

    @property
    def progress(self) -> float:
        return self.done_steps / self.total_steps if self.total_steps else 0.0

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def status_text(self) -> str:
        if self._prepared is not None and not self.finished:
            return f"{self.label}: applying the result..."
        if self.total_steps:
            return f"{self.label}: step {self.done_steps}/{self.total_steps}"
        return f"{self.label}: starting the backend..."

    def start(self):
        """Submit the request (never blocks: a transport reports start failures as error events)."""
        self.job = self.transport.submit(self.request)
        self.state = "running"

    def cancel(self):
        """Ask the backend to stop; whatever arrives afterwards (even a result) writes nothing."""
        if self.finished:
            return
        self._cancel_requested = True
        self.message = "cancelling..."
        if self.job is not None:
            self.job.cancel()
        if self._prepared is not None or self.job is None:
            self.state, self.message = "cancelled", "cancelled: nothing was changed"

    def tick(self) -> bool:
        """Handle what has arrived, within a small time budget. Returns True while the job is still running."""
        began, began_cpu = time.perf_counter(), time.thread_time()
        self.ticks += 1
        if self.state == "running":
            self.transport.check_timeouts()
        if self.state == "running" and self._prepared is not None:
            self._finish_prepared()
        while self.state == "running" and self._prepared is None and time.perf_counter() - began < self.tick_budget_s:
            try:
                event = self.job.events.get_nowait()
            except queue.Empty:
                break
            self._handle(event)
        self.longest_tick_s = max(self.longest_tick_s, time.perf_counter() - began)
        self.longest_tick_cpu_s = max(self.longest_tick_cpu_s, time.thread_time() - began_cpu)
        return not self.finished

    def _handle(self, event):
        kind = event.get("event")
        self.events_seen.append(kind)
        if kind == "progress":
            self.done_steps, self.total_steps = event["done"], event["total"]
        elif kind in ("result", "info", "hello") and self._cancel_requested:  # finished before the cancel: drop it
            self.state, self.message = "cancelled", "cancelled: nothing was changed"
        elif kind in ("result", "info", "hello"):  # the answer: `result` to generate, `info` to load/info, ...
            self._prepared = queue.Queue()
            threading.Thread(target=self._prepare, args=(event,), name="mdm-prepare", daemon=True).start()
        elif kind == "error":
            self.state, self.message = "failed", event.get("message", "the backend failed")
        elif kind == "cancelled":
            self.state, self.message = "cancelled", "cancelled: nothing was changed"

    def _prepare(self, event):
        try:
            self._prepared.put((True, self.prepare(event) if self.prepare else event))
        except Exception as err:  # UserError (e.g. an unmappable rig) or a bug: the job fails, nothing written
            self._prepared.put((False, err))

    def _finish_prepared(self):
        try:
            ok, value = self._prepared.get_nowait()
        except queue.Empty:
            return
        if not ok:
            self.state, self.message = "failed", _describe(value)
            return
        try:
            self.message = self.on_result(value) or "done"
            self.state = "done"
        except Exception as err:  # the scene write failed: report it, the job is over
            self.state, self.message = "failed", _describe(err)

    def run_to_end(self, poll_s=0.01):
        """Synchronous path (scripts, background mode, tests): block until the job finishes. Returns the last job
        of the chain that ran (itself without `then`, or the first that did not finish done)."""
        job = self
        while True:
            if job.state == "pending":
                job.start()
            while job.tick():
                time.sleep(poll_s)
            if job.state != "done" or job.then is None:
                return job
            job = job.then()


def _describe(err) -> str:
    """A user-facing line: UserError messages as they are, anything else with its type."""
    from .backend.errors import UserError

    return str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
