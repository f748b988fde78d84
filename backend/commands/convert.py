"""`convert IN.bvh OUT.npz`: a BVH clip -> 22 joints at 20 fps (metres, Y-up) and the 263 HumanML3D features."""
import sys

import numpy as np

from .. import skeleton
from ..features import joints_to_features
from ..files import atomic_output, require_writable
from ..mocap import FAMILIES, load_clip
from .common import finite_float, write_motion_npz


def add_arguments(parser):
    parser.add_argument("input", help="BVH file (CMU MotionBuilder/ASF/Daz/3dsMax-friendly, iClone CC, or ours)")
    parser.add_argument("output", help="output .npz: joints (T,22,3), features (T-1,263), meta (JSON text)")
    parser.add_argument("--fps", type=finite_float, help="true frame rate of the BVH (default: its header; CMU headers "
                        "often lie: use cmu_stated_fps from the mocap index)")
    parser.add_argument("--skip", type=int, default=0, help="leading T-pose frames to drop (default 0)")
    parser.add_argument("--family", choices=sorted(FAMILIES), help="skeleton family (default: detected from the "
                        "joint names)")


def run(args):
    require_writable(args.output, inputs=[args.input])
    clip = load_clip(args.input, fps=args.fps, skip=args.skip, family=args.family)
    features = joints_to_features(clip.joints)
    meta = {
        "source": str(args.input), "family": clip.family, "source_fps": clip.source_fps,
        "source_frames": clip.source_frames, "skipped_frames": clip.skipped_frames, "fps": skeleton.FPS,
        "frames": len(clip.joints), "units": "metres, Y-up",
    }
    with atomic_output(args.output) as tmp:
        write_motion_npz(tmp, clip.joints.astype(np.float32), features.astype(np.float32), meta)
    print(f"wrote {args.output}: {len(clip.joints)} frames at {skeleton.FPS} fps from {clip.family} "
          f"({clip.source_frames} frames at {clip.source_fps:g} fps)", file=sys.stderr)
