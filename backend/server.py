"""The stdio backend: JSON lines in on stdin, JSON lines out on stdout (docs/protocol.md). Opens no network port.

A reader thread takes requests off stdin so that `cancel` reaches a running job at once; jobs run one at a time
on the main thread. stdout belongs to the protocol alone: anything else that prints (libraries, warnings, progress
bars) is sent to stderr, so a stray print can never corrupt the channel.
"""
import base64
import io
import json
import queue
import sys
import threading

import numpy as np

from .service import Service


def encode(value):
    """JSON-ready form of an event: numpy arrays become {"__ndarray__": base64, "dtype", "shape"}."""
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        return {"__ndarray__": base64.b64encode(array.tobytes()).decode("ascii"), "dtype": array.dtype.str,
                "shape": list(array.shape)}
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def decode(value):
    """Inverse of `encode` (used by the add-on's subprocess transport)."""
    if isinstance(value, dict):
        if "__ndarray__" in value:
            data = base64.b64decode(value["__ndarray__"])
            return np.frombuffer(data, dtype=np.dtype(value["dtype"])).reshape(value["shape"]).copy()
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def plain_id(value) -> bool:
    """A request id (or a cancel's target) is a string, an integer or null: it is echoed and used as a set key."""
    return value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def serve(stdin=None, stdout=None):
    """Serve until stdin closes or a `shutdown` request arrives."""
    # Bytes that are not UTF-8 become U+FFFD: a bad line is answered as unreadable, never the end of the reader.
    stdin = stdin or io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    channel = stdout or sys.stdout
    sys.stdout = sys.stderr  # from now on only `send` writes to the protocol channel
    lock = threading.Lock()

    def send(event):
        line = json.dumps(encode(event), separators=(",", ":"))
        with lock:
            channel.write(line + "\n")
            channel.flush()

    requests, cancelled_ids = queue.Queue(), set()

    def read():
        try:
            for line in stdin:
                if not line.strip():
                    continue
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("a request must be a JSON object")
                    if not (plain_id(request.get("id")) and plain_id(request.get("target"))):
                        raise ValueError("'id' and 'target' must be a string, an integer or null")
                except ValueError as err:
                    send({"id": None, "event": "error", "kind": "protocol", "message": f"unreadable request: {err}"})
                    continue
                if request.get("op") == "cancel":
                    cancelled_ids.add(request.get("target"))
                    continue
                requests.put(request)
                if request.get("op") == "shutdown":
                    return
        finally:  # at the end of stdin, or if reading fails: the server ends instead of waiting forever
            requests.put({"op": "shutdown"})

    threading.Thread(target=read, name="stdin-reader", daemon=True).start()
    service = Service()
    while True:
        request = requests.get()
        if request.get("op") == "shutdown":
            send({"id": request.get("id"), "event": "bye"})
            return
        rid = request.get("id")
        service.handle(request, send, cancelled=lambda: rid in cancelled_ids)
        cancelled_ids.discard(rid)


if __name__ == "__main__":  # `python -m backend.server`: the entry point the add-on starts (needs no CLI modules)
    serve()
