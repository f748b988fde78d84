"""`demo --out DIR`: the README's main job on a fresh clone (see README "Two commands")."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MOCAP = REPO.parent / "shared" / "mocap" / "cmu"
DEMO_CLIP = "przestr/07_01.bvh"  # a plain CMU walk (subject 07, train split)


def add_arguments(parser):
    parser.add_argument("--out", default="out/demo", help="output folder")
    parser.add_argument("--mocap", default=str(DEFAULT_MOCAP), help="folder with the CMU index.csv")


def run(args):
    import json

    import numpy as np

    from .. import features
    from ..bvh import write_bvh
    from ..errors import UserError
    from ..files import atomic_output
    from ..mocap import load_clip, read_index
    from ..preview import draw_strip

    index = Path(args.mocap) / "index.csv"
    rows = {str(row.path.relative_to(args.mocap)): row for row in read_index(index)} if index.is_file() else {}
    if DEMO_CLIP not in rows:
        raise UserError(f"{Path(args.mocap) / DEMO_CLIP} is not listed in {Path(args.mocap) / 'index.csv'}: "
                        f"point --mocap at the shared CMU folder")
    row = rows[DEMO_CLIP]
    clip = load_clip(row.path, fps=row.fps, skip=row.tpose_frames, family=row.family)
    feats = features.joints_to_features(clip.joints)  # (T-1, 263) HumanML3D features
    recovered = features.features_to_joints(feats)  # the same motion, on the HumanML3D reference skeleton
    out = Path(args.out)
    with atomic_output(out / "motion.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, joints=clip.joints.astype(np.float32), features=feats.astype(np.float32),
                     meta=np.array(json.dumps({"source": DEMO_CLIP, "family": clip.family, "fps": 20})))
    with atomic_output(out / "motion.bvh") as tmp:
        write_bvh(tmp, recovered, fps=20)
    with atomic_output(out / "preview.png") as tmp:
        draw_strip([clip.joints, recovered], tmp, labels=[f"CMU {DEMO_CLIP} ({clip.family}), 20 fps",
                                                           "recovered from its 263 HumanML3D features"])
    print(f"wrote {out / 'motion.npz'}, {out / 'motion.bvh'} and {out / 'preview.png'}")
