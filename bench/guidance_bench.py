"""Adherence against the classifier-free guidance scale, on the *training* sentences, so the scale can be chosen
without looking at the held-out paraphrases that `evaluate` scores.

    .venv/bin/python bench/guidance_bench.py [--checkpoint M] [--data ../shared/mocap/cmu]
                                             [--guidance 1.5 2.5 4 6] [--prompts 6]

For each scale: `evaluate`'s adherence (the same classifier, trained with the same seed on real training clips
plus procedural ones; the same requests) on `--prompts` category-level training sentences per category
(`captions.train_captions`), beside what guidance costs in plausibility: the returned motions' foot skate, jitter,
bone-length drift and pose speed (the real clips' are in `evaluate`'s output: 0.081, 119, 0 and 0.41).
"""
import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend import captions, evaluate  # noqa: E402
from backend.mocap import DEFAULT_MOCAP_DIR  # noqa: E402
from backend.pipeline import Pipeline  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="model folder or .pt (default: the embedded model)")
    parser.add_argument("--data", default=str(DEFAULT_MOCAP_DIR))
    parser.add_argument("--guidance", type=float, nargs="+", default=[1.5, 2.5, 4.0, 6.0])
    parser.add_argument("--prompts", type=int, default=6, help="training sentences per category")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipeline = Pipeline(args.checkpoint)
    options = evaluate.for_model(evaluate.EvalOptions(prompts_per_category=args.prompts, seed=args.seed), pipeline)
    motion_classifier = evaluate.adherence_classifier(args.data, options, lambda *_: None)
    print(f"{len(motion_classifier.categories)} categories x {args.prompts} training sentences, seed {args.seed}")
    for scale in args.guidance:
        adherence, generated, _, _ = evaluate.evaluate_adherence(pipeline, motion_classifier,
                                                                 replace(options, guidance=scale), lambda *_: None,
                                                                 sentences=captions.train_captions)
        quality = evaluate.plausibility(generated)
        missed = ", ".join(f"{c} {a:.0%}" for c, a in sorted(adherence["per_category"].items()) if a < 1)
        print(f"guidance {scale:4.1f}: adherence {adherence['accuracy']:.0%}  skate {quality['foot_skate']:.3f}  "
              f"jitter {quality['jitter']:.0f}  bone std {quality['bone_length_std']:.3f}  "
              f"pose speed {quality['pose_speed']:.2f}  | below 100%: {missed}", flush=True)


if __name__ == "__main__":
    main()
