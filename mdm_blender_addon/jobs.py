"""The main-thread side of a backend job: drain its events in short ticks, keep progress, finish exactly once.

bpy-free, so tests tick it directly. The modal operator (operators.py) calls `tick()` from a window timer;
scripts and background mode call `run_to_end()`. Results are handed to `on_result` on the main thread, which is
the only place that writes to the scene; a cancelled or failed job writes nothing.
"""
import time

TERMINAL_EVENTS = ("result", "error", "cancelled")


class BackendJob:
    def __init__(self, transport, request: dict, on_result, tick_budget_s=0.005):
        self.transport = transport
        self.request = request
        self.on_result = on_result
        self.tick_budget_s = tick_budget_s
        self.job = None
        self.state = "pending"  # pending -> running -> done | failed | cancelled
        self.message = ""
        self.done_steps, self.total_steps = 0, 0
        self.longest_tick_s = 0.0

    @property
    def progress(self) -> float:
        return self.done_steps / self.total_steps if self.total_steps else 0.0

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def start(self):
        from .transport import TransportError

        try:
            self.job = self.transport.submit(self.request)
            self.state = "running"
        except TransportError as err:
            self.state, self.message = "failed", str(err)

    def cancel(self):
        if self.job is not None and not self.finished:
            self.job.cancel()
            self.message = "cancelling..."

    def tick(self) -> bool:
        """Handle the events that have arrived, within a small time budget. Returns True while still running."""
        began = time.perf_counter()
        if self.state == "running" and hasattr(self.transport, "check_timeouts"):
            self.transport.check_timeouts()
        while self.state == "running" and time.perf_counter() - began < self.tick_budget_s:
            try:
                event = self.job.events.get_nowait()
            except Exception:  # queue.Empty
                break
            self._handle(event)
        self.longest_tick_s = max(self.longest_tick_s, time.perf_counter() - began)
        return not self.finished

    def _handle(self, event):
        kind = event.get("event")
        if kind == "progress":
            self.done_steps, self.total_steps = event["done"], event["total"]
        elif kind == "result":
            try:
                self.message = self.on_result(event) or "done"
                self.state = "done"
            except Exception as err:  # the scene write failed: report it, the job is over
                self.state, self.message = "failed", f"{type(err).__name__}: {err}"
        elif kind == "error":
            self.state, self.message = "failed", event.get("message", "the backend failed")
        elif kind == "cancelled":
            self.state, self.message = "cancelled", "cancelled: nothing was changed"

    def run_to_end(self, poll_s=0.01):
        """Synchronous path (scripts, background mode, tests): block until the job finishes."""
        if self.state == "pending":
            self.start()
        while self.tick():
            time.sleep(poll_s)
        return self.state
