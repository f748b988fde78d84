"""`bench`: speed and memory of the full-size model, our path vs the official recipe, measured in one run."""


def frame_list(text: str) -> list[int]:
    """argparse type: comma-separated positive frame counts ('' = none)."""
    import argparse

    try:
        frames = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of frame counts") from None
    if any(count < 1 for count in frames):
        raise argparse.ArgumentTypeError(f"frame counts must be at least 1, got {text!r}")
    return frames


def add_arguments(parser):
    parser.add_argument("--frames", type=frame_list, default="120,196",
                        help="comma-separated clip lengths for the full-size model "
                             "('' measures the embedded model only)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5, help="timings per figure (the median is reported)")
    parser.add_argument("--official-steps-timed", type=int, default=50,
                        help="official-recipe steps actually timed before scaling to 1000 (1000 = time them all)")
    parser.add_argument("--device", default="auto")


def run(args):
    from ..bench import run_bench
    from ..device import pick_device

    run_bench(pick_device(args.device), args.frames, args.steps, args.repeat,
              args.official_steps_timed)
