"""`prepare-data --out DIR`: CMU training clips + procedural motion -> captioned feature windows, Mean/Std, summary."""
import time
from pathlib import Path

from ..data import CAPTIONS_PER_WINDOW, PROCEDURAL_SHARE, Windowing
from ..files import require_writable
from ..mocap import DEFAULT_MOCAP_DIR
from ..procedural import GENERATORS
from .common import finite_float

DEFAULT_WINDOWING = Windowing()


def add_arguments(parser):
    parser.add_argument("--mocap", type=Path, default=DEFAULT_MOCAP_DIR,
                        help="folder with index.csv and the BVH files (default: %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (dataset.npz, Mean.npy, ...)")
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOWING.window,
                        help="longest window in frames at 20 fps")
    parser.add_argument("--stride", type=int, default=DEFAULT_WINDOWING.stride, help="frames between window starts")
    parser.add_argument("--min-length", type=int, default=DEFAULT_WINDOWING.min_length,
                        help="shortest window (and clip) kept, frames")
    parser.add_argument("--shorter", type=int, default=DEFAULT_WINDOWING.shorter,
                        help="random shorter windows per full window")
    parser.add_argument("--procedural-share", type=finite_float, default=PROCEDURAL_SHARE,
                        help="fraction of all frames that are procedural (idle, turn, wave, crouch, sit)")
    parser.add_argument("--captions-per-window", type=int, default=CAPTIONS_PER_WINDOW,
                        help="paraphrases stored per window")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--files", nargs="+", metavar="PATH", help="only these index.csv paths (train rows)")
    parser.add_argument("--limit", type=int, help="only the first N training clips")
    parser.add_argument("--loop-runs", action="store_true",
                        help="also repeat the best cycle of each short run take to a full window (backend/cycles.py); "
                             "off by default; the shipped model was trained with it")
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
    from ..data import prepare, write

    require_writable(args.out, folder=True, inputs=[args.mocap])
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
