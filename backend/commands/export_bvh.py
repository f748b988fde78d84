"""`export-bvh IN.npz OUT.bvh`: 22-joint motion -> BVH on a T-pose skeleton with the motion's bone lengths."""
import json
import sys

import numpy as np

from .. import skeleton
from ..bvh import write_bvh
from ..errors import NUMPY_FILE_ERRORS, UserError
from ..files import atomic_output, require_writable
from .common import finite_float


def add_arguments(parser):
    parser.add_argument("input", help=".npz with `joints` (T,22,3) or (S,T,22,3), metres, Y-up")
    parser.add_argument("output", help="output .bvh")
    parser.add_argument("--sample", type=int, default=0, help="which sample of (S,T,22,3) joints (default 0)")
    parser.add_argument("--fps", type=finite_float, help="frame rate (default: `fps` in the file's meta, else 20)")
    parser.add_argument("--exact", action="store_true", help="add position channels where rotations alone cannot "
                        "reproduce the joints (bones that change length); many rigs ignore them")


def run(args):
    require_writable(args.output, inputs=[args.input])
    joints, meta = _read_motion(args.input)
    if joints.ndim == 4:
        if not -len(joints) <= args.sample < len(joints):
            raise UserError(f"{args.input}: --sample {args.sample} is out of range: the file has {len(joints)}")
        joints = joints[args.sample]
    elif args.sample not in (0, -1):
        raise UserError(f"{args.input} holds one motion (T, 22, 3): --sample {args.sample} does not apply")
    fps = args.fps or meta.get("fps", skeleton.FPS)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
        raise UserError(f"frame rate must be a positive number, got {fps!r}")
    with atomic_output(args.output) as tmp:
        write_bvh(tmp, joints, fps, exact=args.exact)
    print(f"wrote {args.output}: {len(joints)} frames at {fps:g} fps", file=sys.stderr)


def _read_motion(path):
    """`joints` ((T,22,3) or (S,T,22,3); `write_bvh` checks the values) and the `meta` dict of a motion .npz."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "joints" not in data.files:
                raise UserError(f"{path}: no `joints` array (it has: {', '.join(data.files) or 'nothing'})")
            joints = data["joints"]
            meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
            meta = meta if isinstance(meta, dict) else {}
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except NUMPY_FILE_ERRORS as err:  # ValueError also covers a bad meta's JSON
        raise UserError(f"{path}: not a readable .npz motion file ({err})") from None
    shape = (skeleton.NUM_JOINTS, 3)
    if joints.ndim not in (3, 4) or joints.shape[-2:] != shape or joints.shape[-3] < 1:
        raise UserError(f"{path}: `joints` must be (T, 22, 3) or (S, T, 22, 3) with T >= 1, got {joints.shape}")
    return joints, meta
