"""`prepare-data --out DIR`: CMU training clips + procedural motion -> captioned feature windows, Mean/Std, summary."""
import time
from pathlib import Path

from ..procedural import GENERATORS

DEFAULT_MOCAP = Path(__file__).resolve().parents[3] / "shared" / "mocap" / "cmu"  # ../shared beside the repo


def add_arguments(parser):
    parser.add_argument("--mocap", type=Path, default=DEFAULT_MOCAP,
                        help="folder with index.csv and the BVH files (default: %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (dataset.npz, Mean.npy, ...)")
    parser.add_argument("--window", type=int, default=120, help="longest window in frames at 20 fps")
    parser.add_argument("--stride", type=int, default=20, help="frames between window starts")
    parser.add_argument("--min-length", type=int, default=16, help="shortest window (and clip) kept, frames")
    parser.add_argument("--shorter", type=int, default=1, help="random shorter windows per full window")
    parser.add_argument("--procedural-share", type=float, default=0.2,
                        help="fraction of all frames that are procedural (idle, turn, wave, crouch, sit)")
    parser.add_argument("--captions-per-window", type=int, default=8, help="paraphrases stored per window")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--files", nargs="+", metavar="PATH", help="only these index.csv paths (train rows)")
    parser.add_argument("--limit", type=int, help="only the first N training clips")
    parser.add_argument("--loop-runs", action="store_true",
                        help="also repeat the best cycle of each short run take to a full window (backend/cycles.py); "
                             "the shipped model was trained without")
    parser.add_argument("--pad-procedural", nargs="*", metavar="CATEGORY", choices=list(GENERATORS),
                        help="procedural clips of these categories (no names: all of them) stand longer before and "
                             "after their action, to a length drawn up to --window, so the model sees them at full "
                             f"length; categories: {', '.join(GENERATORS)}")


def padded_categories(named):
    """--pad-procedural's categories: none when the flag is absent, every category when it names none."""
    if named is None:
        return ()
    return tuple(named) or tuple(GENERATORS)


def run(args):
    from ..data import Windowing, prepare, write

    started = time.perf_counter()
    windowing = Windowing(args.window, args.stride, args.min_length, args.shorter)
    dataset, mean, std, summary = prepare(args.mocap, windowing, args.procedural_share, args.captions_per_window,
                                          args.seed, args.files, args.limit, args.loop_runs,
                                          padded_categories(args.pad_procedural))
    summary["runtime_s"] = round(time.perf_counter() - started, 2)
    write(args.out, dataset, mean, std, summary)
    minutes = summary["minutes"]
    looped = f" + {minutes['looped']} min looped from {len(summary['looped_clips'])} takes" if minutes["looped"] else ""
    print(f"{len(summary['real_clips'])} clips, {minutes['real']} min real{looped} + {minutes['procedural']} min "
          f"procedural ({summary['procedural_share_percent']}%), {len(dataset)} windows -> {args.out} "
          f"in {summary['runtime_s']} s")
    return 0
