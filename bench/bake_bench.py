"""Bake speed: 196 frames of CMU walk onto Rigify's metarig, bulk `foreach_set` vs per-key `keyframe_insert`.

    .venv/bin/python bench/bake_bench.py [--frames 196]

Both paths key the same planned channels in the same process; the time covers writing keys only (the plan,
i.e. retargeting, is shared and measured separately).
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import blender_util  # noqa: E402  (tests/ helpers: build and install the extension)
from conftest import MOCAP_DIR  # noqa: E402

CLIP = MOCAP_DIR / "mb_misc" / "02_01.bvh"  # CMU walk, looped to the frame count


def bake_per_key(ob, channels, frame_start):
    """The baseline: set each pose-bone property and call `keyframe_insert` once per frame and channel."""
    import bpy
    ob.animation_data_create().action = None
    for t in range(len(channels[0].values)):
        for channel in channels:
            pose_bone = ob.pose.bones[channel.bone]
            setattr(pose_bone, channel.prop, channel.values[t])
            pose_bone.keyframe_insert(channel.prop, frame=frame_start + t, group=channel.bone)
    return ob.animation_data.action


def run(frames=196, repeats=3) -> dict:
    """Seconds (best of `repeats`) for the plan, the bulk bake and the per-key baseline, and their ratio."""
    import bpy
    with tempfile.TemporaryDirectory() as tmp:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        zip_path = blender_util.build_extension(Path(tmp))
        repo = Path(tmp) / "repo"
        blender_util.install_zip(zip_path, repo)
        addon = blender_util.enable_addon(repo)
        try:
            motion = addon.motions.read_motion_file(CLIP)[0]
            motion.joints = _looped(motion.joints, frames)
            motion.fps = bpy.context.scene.render.fps  # no resampling: exactly `frames` keys per curve
            ob = blender_util.add_rigify_metarig()
            start = time.perf_counter()
            bone_map, _ = addon.rig.bone_map_for_bake(ob)
            channels = addon.bake.plan_channels(ob, motion, bpy.context.scene, bone_map, "MOTION", "")
            plan_s = time.perf_counter() - start
            bulk_s = _best(repeats, lambda: addon.bake.bake(ob, "bulk", channels, 1, {}))
            per_key_s = _best(repeats, lambda: bake_per_key(ob, channels, 1))
        finally:
            blender_util.disable_addon()
    keys = frames * sum(c.values.shape[1] for c in channels)
    return {"frames": frames, "channels": len(channels), "keys": keys, "plan_s": plan_s, "bulk_s": bulk_s,
            "per_key_s": per_key_s, "speedup": per_key_s / bulk_s}


def _looped(joints, frames):
    import numpy as np
    return joints[np.arange(frames) % len(joints)]


def _best(repeats, fn):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=196)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    r = run(args.frames, args.repeats)
    print(f"bake {r['frames']} frames onto the Rigify metarig: {r['channels']} channels, {r['keys']} keys")
    print(f"  plan (retarget)        {r['plan_s'] * 1000:8.1f} ms")
    print(f"  bulk foreach_set       {r['bulk_s'] * 1000:8.1f} ms")
    print(f"  per-key keyframe_insert {r['per_key_s'] * 1000:7.1f} ms")
    print(f"  speed-up               {r['speedup']:8.1f} x")


if __name__ == "__main__":
    main()
