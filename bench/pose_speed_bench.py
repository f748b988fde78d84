"""How much of the data's movement a model keeps, step by step: the pose speed (`metrics.pose_speed`, the joints'
mean speed relative to the root) of its x0 prediction from a noised training window, and of whole samples from the
window's own caption, each over the window's.

    .venv/bin/python bench/pose_speed_bench.py [--checkpoint M ...] [--data out/data] [--categories jump reach ...]

An x0 prediction from an almost clean input (small t) should keep a ratio near 1. A network that blurs it keeps
less, and the sampler applies it at every one of its steps, so its samples keep far less still: the standing-still
answers to "a person jumps" that the adherence evaluation counts as misses. Windows: the longest training windows
of each category in the prepared data (`prepare-data`), sampled at their own length; noise and samples are seeded.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend import metrics  # noqa: E402
from backend.data import TrainingSet  # noqa: E402
from backend.diffusion import make_schedule, q_sample  # noqa: E402
from backend.features import features_to_joints  # noqa: E402
from backend.pipeline import MotionRequest, Pipeline  # noqa: E402

STEPS = (1, 5, 15, 30, 45)  # noise levels probed (the embedded models' 50-step schedule)


def category_windows(data: TrainingSet, category, count, frames):
    """The first `count` of the category's longest windows that a model of at most `frames` frames generates."""
    code = list(data.dataset.category_names).index(category)
    found = [i for i in range(len(data)) if data.dataset.category[i] == code and data.dataset.length[i] <= frames]
    return sorted(found, key=lambda i: -data.dataset.length[i])[:count]


def kept_ratios(pipe: Pipeline, data: TrainingSet, index, samples):
    """[ratio of x0_hat at each of STEPS..., ratio of the samples] for training window `index`."""
    raw = data.dataset.window(index)  # (F, 263) features
    truth = metrics.pose_speed(features_to_joints(raw))
    config, loaded, device = pipe.config, pipe.loaded, pipe.device
    x0 = torch.from_numpy((raw - loaded.mean) / loaded.std).float().T[None, :, None, :].to(device)  # [1, 263, 1, F]
    caption = str(data.caption_table[data.caption_index[index, 0]])
    cond = {"text_embed": pipe.encode_text(caption)}
    schedule = make_schedule(config.diffusion_steps, config.noise_schedule)
    generator = torch.Generator().manual_seed(index)
    ratios = []
    for step in STEPS:
        t = torch.tensor([min(step, schedule.num_steps - 1)], device=device)
        x_t = q_sample(schedule, x0, t, torch.randn(x0.shape, generator=generator).to(device))  # noise drawn on the CPU
        with torch.no_grad():
            x0_hat = loaded.model(x_t, t, cond)[0, :, 0].T.cpu().numpy() * loaded.std + loaded.mean  # (F, 263)
        ratios.append(metrics.pose_speed(features_to_joints(x0_hat)) / truth)
    result = pipe.generate(MotionRequest(text=caption, frames=len(raw), samples=samples, seed=index, guidance=2.5,
                                         plant_feet=False))
    ratios.append(np.mean([metrics.pose_speed(j) for j in result.joints]) / truth)
    return ratios


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", nargs="+", default=[None], help="model folders (default: the embedded one)")
    parser.add_argument("--data", default=str(REPO / "out" / "data"), help="prepare-data folder")
    parser.add_argument("--categories", nargs="+", default=["jump", "reach", "dance", "kick", "walk"])
    parser.add_argument("--windows", type=int, default=4, help="windows per category")
    parser.add_argument("--samples", type=int, default=2, help="samples per window")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = TrainingSet(args.data)
    for checkpoint in args.checkpoint:
        pipe = Pipeline(checkpoint)
        frames = pipe.loaded.frames["max_frames"]
        print(f"\n{checkpoint or 'embedded default'}: pose speed kept (x0_hat at step t / samples, over the window's)")
        print(f"{'category':<14}" + "".join(f"{'t=' + str(s):>8}" for s in STEPS) + f"{'samples':>9}")
        for category in args.categories:
            windows = category_windows(data, category, args.windows, frames)
            *steps, samples = np.mean([kept_ratios(pipe, data, i, args.samples) for i in windows], axis=0)
            print(f"{category:<14}" + "".join(f"{r:>8.2f}" for r in steps) + f"{samples:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
