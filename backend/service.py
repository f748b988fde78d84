"""Requests as plain dicts -> events as plain dicts: what both transports run (the add-on's in-process worker thread
and the stdio server). Arrays stay numpy here; only the stdio layer encodes them.

Ops: `hello`, `load` (checkpoint, device, clip), `info`, `generate` (a MotionRequest as fields; `keys` as
{frames, joints, joint_mask}). Events: `hello`, `info`, `progress` (done, total), `result` (joints, features,
meta), `error` (message, kind "user" | "internal"), `cancelled`. See docs/protocol.md.
"""
import platform
import traceback

PROTOCOL_VERSION = 1
BACKEND_VERSION = "0.1.0"


class Service:
    def __init__(self):
        self.pipeline = None
        self._pipeline_key = None

    def handle(self, request: dict, emit, cancelled=lambda: False):
        """Run one request, reporting through `emit(event)`. Never raises: failures become `error` events."""
        from .errors import SamplingCancelled, UserError

        rid, op = request.get("id"), request.get("op")
        try:
            handler = getattr(self, f"_op_{op}", None) if isinstance(op, str) else None
            if handler is None:
                raise UserError(f"unknown request op {op!r}")
            handler(request, lambda event: emit({"id": rid, **event}), cancelled)
        except UserError as err:
            emit({"id": rid, "event": "error", "kind": "user", "message": str(err)})
        except SamplingCancelled:
            emit({"id": rid, "event": "cancelled"})
        except Exception as err:  # the message reaches the user; the traceback goes to the log
            emit({"id": rid, "event": "error", "kind": "internal",
                  "message": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()})

    # ------------------------------------------------------------------ ops
    def _op_hello(self, request, emit, cancelled):
        import torch

        from .device import pick_device

        emit({"event": "hello", "protocol": PROTOCOL_VERSION, "backend": BACKEND_VERSION,
              "python": platform.python_version(), "torch": torch.__version__,
              "device": str(pick_device(request.get("device")))})

    def _op_load(self, request, emit, cancelled):
        self._ensure_pipeline(request)
        emit({"event": "info", "info": self.pipeline.info()})

    def _op_info(self, request, emit, cancelled):
        self._op_load(request, emit, cancelled)

    def _op_generate(self, request, emit, cancelled):
        pipeline = self._ensure_pipeline(request)
        motion_request = request_from_fields(request.get("params", {}))
        result = pipeline.generate_long(motion_request, progress=lambda done, total: emit(
            {"event": "progress", "done": done, "total": total}), cancelled=cancelled)
        emit({"event": "result", "joints": result.joints, "features": result.features, "meta": result.meta,
              "info": pipeline.info()})

    def _ensure_pipeline(self, request):
        """Load (or keep) the pipeline for the request's checkpoint/device/clip: a warm backend loads once."""
        from .errors import UserError
        from .pipeline import Pipeline

        for name in ("checkpoint", "device", "clip"):
            if not isinstance(request.get(name) or "", str):
                raise UserError(f"request field '{name}' must be a string (a path or a device name)")
        key = (request.get("checkpoint") or None, request.get("device") or "auto", request.get("clip") or None)
        if self.pipeline is None or key != self._pipeline_key:
            self.pipeline, self._pipeline_key = Pipeline(*key[:2], clip_path=key[2]), key
        return self.pipeline


def request_from_fields(params: dict):
    """A MotionRequest from plain fields, each of its field's type (unknown fields are an error, so typos never pass
    silently)."""
    from .errors import UserError, check_field_types
    from .pipeline import MotionRequest

    if not isinstance(params, dict):
        raise UserError(f"request params must be a JSON object, got {type(params).__name__}")
    params = dict(params)
    keys = params.pop("keys", None)
    unknown = sorted(set(params) - set(MotionRequest.__dataclass_fields__))
    if unknown:
        raise UserError(f"unknown request fields {unknown}")
    check_field_types(params, MotionRequest, "request field")
    request = MotionRequest(**params)
    if keys is not None:
        request.keys = keys_from_fields(keys)
    return request


def keys_from_fields(keys):
    """Keyframes from {"frames": [K], "joints": [K][22][3], "joint_mask": [K][22] (optional)}."""
    from .errors import UserError
    from .keyframes import Keyframes

    if not isinstance(keys, dict) or "frames" not in keys or "joints" not in keys:
        raise UserError('request keys must be {"frames": [K], "joints": [K][22][3], "joint_mask": [K][22]} '
                        "(joint_mask optional)")
    return Keyframes.from_arrays(keys["frames"], keys["joints"], keys.get("joint_mask"))
