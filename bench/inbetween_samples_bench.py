"""In-betweening on the eval windows with several samples per window, split into the root's error and the pose's.

    .venv/bin/python bench/inbetween_samples_bench.py [--checkpoint M] [--data ../shared/mocap/cmu]
                                                      [--gaps 10 20 40] [--samples 4]

One sample per window (what `evaluate` reports) is a noisy measure: comparing two models needs more. This makes
`evaluate`'s in-betweening requests (the same windows, keys and seeds, the default method) with `--samples` samples
each and prints, per gap, the mean L2P of every sample beside linear interpolation's, and two parts of it: the
root joint's error, and the error of the pose about the root (each joint's offset from its frame's root, so a root
that strays does not count twice).
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend import evaluate, metrics  # noqa: E402
from backend.keyframes import Keyframes  # noqa: E402
from backend.mocap import DEFAULT_MOCAP_DIR  # noqa: E402
from backend.pipeline import Pipeline  # noqa: E402


def l2p_root_pose(motion, real, keyed):
    """(L2P, mean root error, mean error of the pose about the root) over the frames between keys, in metres."""
    between = np.setdiff1d(np.arange(len(real)), keyed)
    root = np.linalg.norm(motion[between, 0] - real[between, 0], axis=-1).mean()
    about_root = (motion[between] - motion[between, :1]) - (real[between] - real[between, :1])
    return metrics.inbetween_l2p(motion, real, keyed), root, np.linalg.norm(about_root, axis=-1).mean()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="model folder or .pt (default: the embedded model)")
    parser.add_argument("--data", default=str(DEFAULT_MOCAP_DIR))
    parser.add_argument("--gaps", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipeline = Pipeline(args.checkpoint)
    options = evaluate.for_model(evaluate.EvalOptions(samples=args.samples), pipeline)
    clips = evaluate.load_eval_clips(evaluate.read_eval_rows(args.data), lambda *_: None)
    windows = [window for _, window in evaluate.eval_windows(clips, options, pipeline.loaded.frames["min_frames"])]
    print(f"{len(windows)} windows, {args.samples} samples each; metres: L2P / root / pose about the root")
    for gap in args.gaps:
        linear, model = [], []
        for w, real in enumerate(windows):
            keyed = evaluate.regular_keys(len(real), gap)
            linear.append(l2p_root_pose(evaluate.linear_inbetween(real, keyed), real, keyed))
            request = evaluate.inbetween_request(Keyframes.full_poses(keyed, real[keyed]), len(real), w, options)
            model += [l2p_root_pose(motion, real, keyed) for motion in pipeline.generate(request).joints]
        (ll, lr, lp), (ml, mr, mp) = np.mean(linear, axis=0), np.mean(model, axis=0)
        print(f"gap {gap:3d}: linear {ll:.3f} / {lr:.3f} / {lp:.3f}   model {ml:.3f} / {mr:.3f} / {mp:.3f}   "
              f"model / linear {ml / ll:.2f}", flush=True)


if __name__ == "__main__":
    main()
