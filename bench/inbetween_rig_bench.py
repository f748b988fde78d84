"""In-betweening on a real rig: held-out CMU clips baked onto Rigify's metarig, thinned to keys every 20 frames and
filled by `mdm.inbetween`, scored against the baked clip and against Blender's own interpolation of the same keys.

    OMP_NUM_THREADS=1 .venv/bin/python bench/inbetween_rig_bench.py [--checkpoint FOLDER] [--json OUT]

For each `eval` clip of the CMU index: one window of `--frames` frames (20 fps, from `--start` seconds in; shorter
clips give a shorter window that still ends on a key) is imported into the motion list and baked onto a fresh
metarig with the scene at 20 fps, so model frames are scene frames. The rig's evaluated joints (mapped bone heads,
world metres) are recorded for the baked clip; then every point off the key frames is deleted and the rig is
recorded under Blender's LINEAR and default (BEZIER, auto-clamped handles) interpolation of the remaining keys;
finally the built add-on in-betweens the range (in-process backend, the add-on's preferences choose the model)
and the rig is recorded again. Metrics are `backend.metrics` (docs metrics.md): key error, L2P over the frames
between the keys, and the seam ratio (jerk around the keys over the clip's own jerk).
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import blender_util  # noqa: E402  (tests/ helpers: build, install and enable the extension, add the metarig)
from backend import evaluate, metrics, skeleton  # noqa: E402
from backend.errors import UserError  # noqa: E402
from backend.files import atomic_output  # noqa: E402
from backend.pipeline import DEFAULT_CHECKPOINT  # noqa: E402
from conftest import MOCAP_DIR  # noqa: E402

GAP = 20  # frames between kept keys (1 s at 20 fps)
FIRST_FRAME = 1  # the scene frame the bake starts at


# ---------------------------------------------------------------------------------------------------------------
# Clips (bpy-free)
# ---------------------------------------------------------------------------------------------------------------

def eval_windows(mocap_dir, frames, start_s):
    """[(name, (F, 22, 3) joints)]: one window per clip `evaluate` reads (`evaluate.read_eval_rows`,
    `evaluate.load_eval_clips`), F = `frames` or, for a shorter clip, the longest length of the form GAP * k + 1
    that fits (so the last frame is a key); it starts `start_s` in, or earlier where the clip ends sooner."""
    windows = []
    for row, joints in evaluate.load_eval_clips(evaluate.read_eval_rows(mocap_dir), print):
        length = min(frames, (len(joints) - 1) // GAP * GAP + 1)
        if length < 2 * GAP + 1:
            print(f"skipping {row.path.name}: {len(joints)} frames, fewer than two gaps of {GAP}")
            continue
        start = min(round(start_s * skeleton.FPS), len(joints) - length)
        windows.append((row.path.relative_to(mocap_dir).as_posix(), joints[start:start + length]))
    return windows


def scores(original, tracks, keys):
    """The metrics of one clip: tracks maps a method ("inbetween", "bezier", "linear") to its (F, 22, 3) joints."""
    l2p = {name: metrics.inbetween_l2p(joints, original, keys) for name, joints in tracks.items()}
    seam = {name: metrics.seam_ratio(joints, keys) for name, joints in tracks.items()}
    jitter_ratio = metrics.jitter(tracks["inbetween"]) / metrics.jitter(original)
    return {
        "frames": len(original),
        "key_error_cm": 100 * metrics.keyframe_error(tracks["inbetween"], original, keys),
        **{f"{name}_l2p": value for name, value in l2p.items()},
        "bezier_ratio": l2p["bezier"] / l2p["inbetween"],
        "linear_ratio": l2p["linear"] / l2p["inbetween"],
        **{f"{name}_seam_ratio": value for name, value in seam.items()},
        "original_seam_ratio": metrics.seam_ratio(original, keys),
        "inbetween_jitter_ratio": jitter_ratio,  # our jitter / the baked clip's
        # The jerk around our keys / the baked clip's own jitter (seam_ratio is relative to our own jitter).
        "inbetween_seam_vs_original": metrics.seam_ratio(tracks["inbetween"], keys, reference=original),
    }


# ---------------------------------------------------------------------------------------------------------------
# Blender
# ---------------------------------------------------------------------------------------------------------------

def use_model(addon, checkpoint):
    """In-process backend on the CPU; the embedded model (None) or a model folder / official .pt."""
    prefs = addon.preferences.get()
    prefs.backend, prefs.device = "IN_PROCESS", "cpu"
    if checkpoint is None:
        prefs.checkpoint_source = "DEFAULT"
    elif checkpoint.is_file():
        prefs.checkpoint_source, prefs.checkpoint_file = "OFFICIAL", str(checkpoint)
    else:
        prefs.checkpoint_source, prefs.checkpoint_folder = "FOLDER", str(checkpoint)


def baked_metarig(joints, npz_path):
    """A fresh metarig with the clip baked from FIRST_FRAME, the scene at the model's frame rate."""
    import bpy
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = skeleton.FPS, 1.0
    scene.frame_current = FIRST_FRAME
    np.savez(npz_path, joints=joints)
    ob = blender_util.add_rigify_metarig()
    assert bpy.ops.mdm.import_motion(filepath=str(npz_path)) == {'FINISHED'}
    assert bpy.ops.mdm.bake(target=ob.name) == {'FINISHED'}
    return ob


def rig_joints(addon, ob, frames):
    """(F, 22, 3) world heads of the mapped bones at each scene frame; every joint must be mapped."""
    import bpy
    bone_map, _ = addon.rig.bone_map_for_bake(ob)
    joints, _values = addon.rig.poses_at(ob, bpy.context.scene, frames, bone_map)
    if np.isnan(joints).any():
        missing = [skeleton.JOINT_NAMES[j] for j in np.flatnonzero(np.isnan(joints).any(axis=(0, 2)))]
        raise UserError(f"the bone map of '{ob.name}' lacks {', '.join(missing)}: joints cannot be compared")
    return joints


def set_interpolation(addon, ob, interpolation):
    """Every point of the rig's curves to `interpolation` with auto-clamped handles (Blender's default keys)."""
    import bpy
    value = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items[interpolation].value
    curves, _ = addon.bake.current_fcurves(ob)
    for fcurve in curves.values():
        points = fcurve.keyframe_points
        points.foreach_set("interpolation", np.full(len(points), value, np.int32))
        for point in points:
            point.handle_left_type = point.handle_right_type = 'AUTO_CLAMPED'
        fcurve.update()  # recomputes the automatic handles


def measure_clip(addon, joints, npz_path, seed):
    """Bake, thin to keys, interpolate with Blender, in-between with the add-on; the clip's scores."""
    import bpy
    ob = baked_metarig(joints, npz_path)
    frames = np.arange(FIRST_FRAME, FIRST_FRAME + len(joints))
    keys = np.arange(0, len(joints), GAP)  # rows of `frames`; the last frame is a key (len = GAP * k + 1)
    original = rig_joints(addon, ob, frames)
    blender_util.keep_keys(ob, frames[keys])
    tracks = {}
    for interpolation in ("LINEAR", "BEZIER"):  # BEZIER last: the animator's keys the in-between starts from
        set_interpolation(addon, ob, interpolation)
        tracks[interpolation.lower()] = rig_joints(addon, ob, frames)
    try:
        bpy.ops.mdm.inbetween(target=ob.name, frame_start=int(frames[0]), frame_end=int(frames[-1]), seed=seed)
    except RuntimeError as err:  # its report: a window longer than the model takes, a broken model
        raise UserError(f"mdm.inbetween failed on the {len(joints)}-frame window: {err}") from err
    tracks["inbetween"] = rig_joints(addon, ob, frames)
    return scores(original, tracks, keys)


def run(windows, checkpoint, seed):
    """{clip name: scores}, each clip on a factory-fresh scene with the built extension enabled."""
    import bpy
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        zip_path = blender_util.build_extension(Path(tmp))
        repo = Path(tmp) / "repo"
        blender_util.install_zip(zip_path, repo)
        for c, (name, joints) in enumerate(windows):
            print(f"[{c + 1}/{len(windows)}] {name}: {len(joints)} frames", flush=True)
            addon = blender_util.enable_addon(repo)
            try:
                use_model(addon, checkpoint)
                results[name] = measure_clip(addon, joints, Path(tmp) / f"clip{c}.npz", seed)
            finally:
                blender_util.disable_addon()
    return results


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------

COLUMNS = (  # (heading, key, format)
    ("frames", "frames", "{:6d}"), ("key err cm", "key_error_cm", "{:10.4f}"),
    ("L2P ours m", "inbetween_l2p", "{:10.4f}"), ("L2P bezier", "bezier_l2p", "{:10.4f}"),
    ("L2P linear", "linear_l2p", "{:10.4f}"), ("bez/ours", "bezier_ratio", "{:8.2f}"),
    ("lin/ours", "linear_ratio", "{:8.2f}"), ("seam ours", "inbetween_seam_ratio", "{:9.2f}"),
    ("seam bez", "bezier_seam_ratio", "{:8.2f}"), ("seam orig", "original_seam_ratio", "{:9.2f}"),
    ("seam ours/orig jit", "inbetween_seam_vs_original", "{:18.2f}"),
)


def mean_row(results):
    """The mean of every score over the clips (ratios averaged per clip, as the spec states them per clip)."""
    return {key: float(np.mean([r[key] for r in results.values()])) for key in next(iter(results.values()))}


def format_table(results, mean):
    width = max(len(name) for name in [*results, "mean"])
    lines = [" ".join([f"{'clip':<{width}}"] + [f"{h:>{len(f.format(0))}}" for h, _, f in COLUMNS])]
    for name, row in [*results.items(), ("mean", mean)]:
        cells = [f.format(round(row[k]) if k == "frames" else row[k]) for _, k, f in COLUMNS]
        lines.append(" ".join([f"{name:<{width}}"] + cells))
    lines.append(f"keys every {GAP} frames at {skeleton.FPS} fps; spec: key err < 1 cm, bez/ours >= 1.5, "
                 "seam ours < 1.5 (seam = jerk within 3 frames of a key / the same clip's jitter; last\n"
                 "column: jerk around our keys / the baked original's jitter)")
    return "\n".join(lines)


def check_args(args):
    """UserError for arguments the benchmark cannot run with (before anything slow starts)."""
    if args.checkpoint is None and not (DEFAULT_CHECKPOINT / "config.json").is_file():
        raise UserError(f"the embedded model is missing ({DEFAULT_CHECKPOINT}/config.json): pass --checkpoint")
    if args.checkpoint is not None and not args.checkpoint.exists():
        raise UserError(f"--checkpoint {args.checkpoint} does not exist")
    if args.frames < 2 * GAP + 1 or (args.frames - 1) % GAP:
        raise UserError(f"--frames must be {GAP} * k + 1 with k >= 2 (the last frame a key), got {args.frames}")
    if args.start < 0:
        raise UserError(f"--start must be >= 0 seconds, got {args.start}")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path,
                        help=f"model folder or official .pt (default: the embedded model, {DEFAULT_CHECKPOINT})")
    parser.add_argument("--mocap", type=Path, default=MOCAP_DIR, help="mocap folder with index.csv")
    parser.add_argument("--frames", type=int, default=5 * GAP + 1, help="window length (GAP * k + 1)")
    parser.add_argument("--start", type=float, default=3.0, help="seconds into each clip the window starts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="only the first N eval clips (a quick run)")
    parser.add_argument("--json", type=Path, help="write the scores here")
    args = parser.parse_args(argv)
    try:
        check_args(args)
        windows = eval_windows(args.mocap, args.frames, args.start)[:args.limit]
        if not windows:
            raise UserError(f"no eval clip in {args.mocap} has {2 * GAP + 1} frames or more")
        results = run(windows, args.checkpoint and args.checkpoint.resolve(), args.seed)
    except UserError as err:
        parser.exit(2, f"error: {err}\n")
    mean = mean_row(results)
    print(format_table(results, mean))
    if args.json:
        model = str(args.checkpoint.resolve()) if args.checkpoint else f"embedded ({DEFAULT_CHECKPOINT})"
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps({"model": model, "gap": GAP, "frames": args.frames, "start_s": args.start,
                                       "seed": args.seed, "clips": results,
                                       "mean": mean}, indent=2))


if __name__ == "__main__":
    main()
