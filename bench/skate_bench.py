"""Foot skate of CMU clips retargeted onto real rigs, against the source's: the benchmark clip and the eval split.

    .venv/bin/python bench/skate_bench.py

Rigs: the four of tests/test_retarget_blender.py (Rigify metarig, Mixamo-named, CMU BVH import, our skeleton at
the clip's own proportions) and a rig Rigify generates from its metarig, all built in Blender (the bpy module).
Skate is measured like the tests do, on the rig's joints mapped back to the motion's frame and scale (Blender's
pose puts them where `retarget` says, to 1e-4, which tests/test_retarget_blender.py checks); the jolt is the
largest second difference of the height the feet add to the pelvis (a pop shows as tens of mm per frame^2).
"""
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import blender_util  # noqa: E402  (tests/ helpers: real rigs)
import test_retarget_blender as real_rigs  # noqa: E402
from backend import bone_maps, evaluate, metrics, mocap, skeleton  # noqa: E402
from backend.retarget import retarget, to_motion_frame  # noqa: E402
from conftest import MOCAP_DIR  # noqa: E402

BENCHMARK = MOCAP_DIR / "acrnn" / "martial" / "04.bvh"  # CMU 135_04, front kicks: 200 frames, as the tests use


def clips():
    """{name: (T, 22, 3) joints at 20 fps, floor at y = 0}: the benchmark clip, then every eval clip."""
    joints = {"135_04 (benchmark)": mocap.load_clip(BENCHMARK, fps=120, skip=4).joints[:200]}
    seen = set()
    for clip in evaluate.read_eval_rows(MOCAP_DIR):
        if clip.path not in seen:
            seen.add(clip.path)
            joints[clip.path.stem] = mocap.load_clip(clip.path, fps=clip.fps, skip=clip.tpose_frames,
                                                     family=clip.family).joints
    return {name: j - [0, j[:, skeleton.CONTACT_JOINTS, 1].min(), 0] for name, j in joints.items()}


def retargeted(make_rig, motion):
    """(foot skate of `motion` retargeted onto a fresh rig minus the source's, the largest jolt of the root's
    height correction: |second difference| per frame, mm in the motion's scale)."""
    import bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)
    rig = real_rigs.read_rig(make_rig(motion))
    mapping = bone_maps.detect(rig.names, rig.parents, rig.heads).mapping
    result = retarget(motion, rig, mapping, controls=bone_maps.controls_for(mapping, rig.names))
    baked = to_motion_frame(result, result.joints)
    correction = baked[:, 0, 1] - motion[:, 0, 1]  # the pelvis height the feet added
    return (metrics.foot_skate_ratio(baked) - metrics.foot_skate_ratio(motion),
            1000 * np.abs(np.diff(correction, 2)).max())


def main():
    rigs = {**real_rigs.RIGS, "rigify_rig": lambda motion: blender_util.add_rigify_rig()}
    print(f"{'clip':20s} {'frames':>6s} {'source':>7s}  " + " ".join(f"{name:>15s}" for name in rigs))
    deltas, jolts = [], []
    for name, motion in clips().items():
        row, jolt = zip(*(retargeted(make, motion) for make in rigs.values()))
        deltas.append(row)
        jolts.append(jolt)
        print(f"{name:20s} {len(motion):6d} {metrics.foot_skate_ratio(motion):7.3f}  "
              + " ".join(f"{d:+15.3f}" for d in row))
    deltas = np.abs(deltas)
    print(f"|skate - source|: mean {deltas.mean():.4f}, max {deltas.max():.3f}, within 0.01: "
          f"{(deltas <= 0.01).mean():.0%} of {deltas.size}; root height jolt: max {np.max(jolts):.1f} mm/frame^2, "
          f"median {np.median(jolts):.1f}")


if __name__ == "__main__":
    main()
