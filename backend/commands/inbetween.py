"""`inbetween`: keyed poses (global joint positions at chosen frames) -> motion that passes through every key."""
from pathlib import Path

from .common import finite_float


def add_arguments(parser):
    parser.add_argument("--checkpoint", help="model folder or official .pt (default: the embedded model)")
    parser.add_argument("--keys", required=True,
                        help=".npz with `frames` (K,) int and `joints` (K,22,3) metres Y-up; "
                             "optional `joint_mask` (K,22)")
    parser.add_argument("--frames", type=int, default=0, help="clip length (default: last key + 1)")
    parser.add_argument("--text", default="", help="optional prompt for the frames between the keys")
    parser.add_argument("--method", default="auto", help="auto, keyframe, x0_replace, repaint or guidance")
    parser.add_argument("--free-root", action="store_true", help="do not pin the root to the keyed root positions")
    parser.add_argument("--no-plant-feet", dest="plant_feet", action="store_false",
                        help="keep the model's own feet: do not hold planted feet still between the keys")
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--guidance", type=finite_float, default=2.5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--clip", help="CLIP ViT-B/32 weights file (official text models)")
    parser.add_argument("--out", required=True, help="output .npz")
    parser.add_argument("--bvh", help="also write sample 0 as a BVH")


def read_keys(path):
    """A keys .npz -> Keyframes, with a clear error for each way the file can be wrong."""
    import numpy as np

    from ..errors import NUMPY_FILE_ERRORS, UserError
    from ..keyframes import Keyframes

    if not Path(path).is_file():
        raise UserError(f"keys file {path} does not exist" if not Path(path).exists() else f"{path} is not a file")
    try:
        data = np.load(path)
        arrays = data["frames"], data["joints"], data["joint_mask"] if "joint_mask" in data.files else None
    except (*NUMPY_FILE_ERRORS, KeyError) as err:
        raise UserError(f"{path} is not a keys file with `frames` (K,) and `joints` (K,22,3): {err}") from None
    return Keyframes.from_arrays(*arrays)


def run(args):
    from ..pipeline import MotionRequest, Pipeline
    from .common import progress_bar, require_outputs, save_result

    require_outputs(args.out, args.bvh, inputs=[args.keys])
    keys = read_keys(args.keys)
    frames = args.frames or (int(keys.frames.max()) + 1 if len(keys.frames) else 0)
    pipeline = Pipeline(args.checkpoint, args.device, clip_path=args.clip)
    request = MotionRequest(text=args.text, frames=frames, samples=args.samples, seed=args.seed,
                            guidance=args.guidance, keys=keys, inbetween_method=args.method,
                            hold_root=not args.free_root, plant_feet=args.plant_feet)
    with progress_bar("in-betweening") as progress:
        result = pipeline.generate_long(request, progress=progress)  # chained past the model's window
    save_result(result, args.out, args.bvh)
