"""`demo --out DIR`: the README's main job. A prompt goes to the model (the embedded default unless --checkpoint),
the add-on is built and installed into real Blender (the bpy module, headless) with Blender's own operator, sample
0 is baked onto a Rigify metarig, and the scene is saved with a frame-strip preview of the samples and the rig."""
from pathlib import Path

from ..files import require_writable
from .common import finite_float

PROMPT = "a person walks across the room"
REPO_MODULE = "mdm_demo"  # the user extension repository the demo installs into


def add_arguments(parser):
    parser.add_argument("--out", default="out/demo", help="output folder")
    parser.add_argument("--prompt", default=PROMPT)
    parser.add_argument("--seconds", type=finite_float, default=5.0)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", help="model folder or official .pt (default: the embedded model)")


def run(args):
    from ..pipeline import MotionRequest, Pipeline
    from .common import progress_bar, save_result

    out = Path(args.out).resolve()
    require_writable(out, folder=True)
    pipeline = Pipeline(args.checkpoint)
    request = MotionRequest(text=args.prompt, frames=round(args.seconds * pipeline.loaded.frames["fps"]),
                            samples=args.samples, seed=args.seed)
    with progress_bar("sampling") as progress:
        result = pipeline.generate(request, progress=progress)
    save_result(result, out / "motion.npz", out / "motion.bvh")
    from ..extension import build_zip

    rig_joints = bake_in_blender(out / "motion.npz", build_zip(out / "dist"), out)

    from ..files import atomic_output
    from ..preview import draw_strip

    read_as = result.meta["prompt_read_as"]
    prompt = f'"{args.prompt}"' + (f' (read as "{read_as}")' if read_as else "")
    labels = [f"{prompt} sample {s} (seed {args.seed})" for s in range(len(result.joints))]
    with atomic_output(out / "preview.png") as tmp:
        draw_strip([*result.joints, rig_joints], tmp, labels=labels + ["sample 0 baked onto a Rigify metarig "
                                                                       "(the rig's evaluated joints)"])
    print(f"wrote {out / 'demo.blend'} and {out / 'preview.png'}")


def bake_in_blender(motion_npz, zip_path, out):
    """Install and enable the add-on, bake sample 0 onto a new Rigify metarig, save the .blend; return the rig's
    evaluated joints (T, 22, 3) in HumanML3D axes, read back through the rig's bone map."""
    import bpy  # Blender as a Python module; addon_utils exists once bpy is imported
    import addon_utils
    import numpy as np

    from .. import skeleton
    from ..extension import install_zip

    bpy.ops.wm.read_factory_settings(use_empty=True)
    repo_dir = out / "extensions"
    repo_dir.mkdir(parents=True, exist_ok=True)
    addon_id = install_zip(zip_path, repo_dir, REPO_MODULE, "MDM demo")
    addon_utils.enable(addon_id, default_set=True)
    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    rig = bpy.context.active_object
    bpy.ops.mdm.import_motion(filepath=str(motion_npz))
    bpy.ops.mdm.bake(target=rig.name, sample=0)
    scene = bpy.context.scene
    scene.frame_end = scene.frame_start + int(rig.animation_data.action.frame_range[1] - scene.frame_start)
    bpy.ops.wm.save_as_mainfile(filepath=str(out / "demo.blend"))

    bone_of = {item.name: item.bone for item in rig.data.mdm.bone_map if item.bone}
    heads_of = {joint: rig.pose.bones[bone] for joint, bone in bone_of.items()}
    to_hml = np.linalg.inv(skeleton.HML_TO_BLENDER)
    frames = []
    for t in range(len(np.load(motion_npz)["joints"][0])):  # the rig at the motion's own 20 fps instants
        frame = scene.frame_start + t * scene.render.fps / scene.render.fps_base / skeleton.FPS
        scene.frame_set(int(frame), subframe=frame % 1)
        frames.append([np.array(rig.matrix_world @ heads_of[j].head) @ to_hml.T if j in heads_of
                       else np.full(3, np.nan) for j in skeleton.JOINT_NAMES])
    addon_utils.disable(addon_id, default_set=True)
    return np.array(frames)
