"""How close does the training data come to the held-out motion between keys? Retrieval with and without the answer.

    .venv/bin/python bench/inbetween_oracle_bench.py [--gaps 10 20 40] [--data ../shared/mocap/cmu]

For every gap between two keys of `evaluate`'s in-betweening windows (keys every `gap` frames), every segment of the
same length in the embedded model's training clips (`data.training_rows`, each also mirrored, every start frame) is
moved rigidly (yaw + XZ translation, least squares) onto the two keys and bent onto them exactly (the misses at the
two ends blended linearly across the gap). Two picks are scored beside linear interpolation, L2P in metres:
- oracle: the bent segment nearest the real motion, chosen *knowing the answer*. No in-betweener that replays
  training motion can score better, and one that picks from the keys alone scores worse by how often it picks wrong;
  the minimum over tens of thousands of segments also flatters the oracle by chance.
- matched: the segment whose two ends best fit the keys (a motion-matching in-betweener, which cannot see the
  answer).
About 1.5 minutes for three gaps on a 2-core CPU.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend import data, evaluate, features  # noqa: E402
from backend.keyframes import fit_yaw_translation  # noqa: E402
from backend.mocap import DEFAULT_MOCAP_DIR  # noqa: E402
from inbetween_ceiling_bench import SHORTEST_CLIP  # noqa: E402


def score_gap(clips, before, after, real_between):
    """(oracle error, matched error) for one gap: mean joint distance over the frames strictly between the keys."""
    span = len(real_between) + 1
    keys = np.concatenate([before, after])  # (44, 3): both key poses, fitted together
    errors, misses = [], []
    for clip in clips:
        if len(clip) <= span:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(clip, span + 1, axis=0)  # (S, 22, 3, L+1)
        segments = windows.transpose(0, 3, 1, 2)  # (S, L+1, 22, 3): every start frame
        ends = np.concatenate([segments[:, 0], segments[:, -1]], 1)  # (S, 44, 3)
        rot, offset = fit_yaw_translation(ends, keys, np.ones(len(keys)))
        moved = np.einsum("sij,stkj->stki", rot, segments) + offset[:, None, None]  # (S, L+1, 22, 3)
        miss_before, miss_after = before - moved[:, 0], after - moved[:, -1]  # (S, 22, 3)
        s = np.linspace(0, 1, span + 1)[1:-1, None, None]  # (L-1, 1, 1): 0 at the key before, 1 at the key after
        bent = moved[:, 1:-1] + (1 - s) * miss_before[:, None] + s * miss_after[:, None]  # (S, L-1, 22, 3)
        errors.append(np.linalg.norm(bent - real_between, axis=-1).mean((1, 2)))
        misses.append(np.linalg.norm(miss_before, axis=-1).mean(1) + np.linalg.norm(miss_after, axis=-1).mean(1))
    errors, misses = np.concatenate(errors), np.concatenate(misses)
    return errors.min(), errors[np.argmin(misses)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_MOCAP_DIR))
    parser.add_argument("--gaps", type=int, nargs="+", default=[10, 20, 40])
    args = parser.parse_args()
    joints = [data.load_joints(row)[0] for row in data.training_rows(Path(args.data))]
    clips = joints + [features.mirror_joints(j) for j in joints]
    print(f"{len(joints)} training clips, each also mirrored: {sum(map(len, clips))} frames")
    options = evaluate.EvalOptions(frames=data.Windowing().window)  # evaluate's windows for the embedded model
    held_out = evaluate.load_eval_clips(evaluate.read_eval_rows(args.data), print)
    windows = evaluate.eval_windows(held_out, options, SHORTEST_CLIP)
    print("L2P (m) over the frames between keys: linear / oracle / matched   linear / oracle   linear / matched")
    for gap in args.gaps:
        per_clip = {}  # clip file -> [(frames, linear, oracle, matched) per gap between keys]
        for row, real in windows:
            keyed = evaluate.regular_keys(len(real), gap)
            linear = evaluate.linear_inbetween(real, keyed)
            for a, b in zip(keyed[:-1], keyed[1:]):
                if b - a < 2:
                    continue  # no frame between the keys
                oracle, matched = score_gap(clips, real[a], real[b], real[a + 1:b])
                linear_error = np.linalg.norm(linear[a + 1:b] - real[a + 1:b], axis=-1).mean()
                gaps_of_clip = per_clip.setdefault("/".join(row.path.parts[-2:]), [])
                gaps_of_clip.append((b - a - 1, linear_error, oracle, matched))
        for name, gaps in [*per_clip.items(), ("all", sum(per_clip.values(), []))]:
            frames = np.array([g[0] for g in gaps], float)
            lin, orc, mat = (np.average([g[i] for g in gaps], weights=frames) for i in (1, 2, 3))
            print(f"  gap {gap:3d} {name:>22}: {lin:.4f} / {orc:.4f} / {mat:.4f}   {lin / orc:.2f}x   "
                  f"{lin / mat:.2f}x", flush=True)


if __name__ == "__main__":
    main()
