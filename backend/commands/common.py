"""Pieces shared by the commands that write motions: a progress bar on stderr, the .npz motion file, and writing a
sampled result atomically."""
import argparse
import contextlib
import json
import math
import sys

import numpy as np

from ..files import atomic_outputs, require_writable


@contextlib.contextmanager
def progress_bar(label):
    """Yield a `progress(done, total)` callback drawing a tqdm bar on stderr."""
    from tqdm import tqdm

    bar = None

    def progress(done, total):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=label, file=sys.stderr, dynamic_ncols=True)
        bar.update(done - bar.n)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.close()


def finite_float(text: str) -> float:
    """argparse type: a finite number (argparse answers "nan" or "inf" with the option's usage)."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def write_motion_npz(path, joints, features, meta):
    """`joints`, `features` and `meta` (a dict, stored as JSON text) to the .npz file `path` (callers pass an
    `atomic_output` path). Written through an open file, so np.savez never appends .npz to a name without it."""
    with open(path, "wb") as f:
        np.savez(f, joints=joints, features=features, meta=np.array(json.dumps(meta)))


def result_paths(out_path, bvh_path=None) -> tuple:
    """The files a sampled result is written to: the .npz, and the BVH when one is asked for."""
    return (out_path, bvh_path) if bvh_path else (out_path,)


def require_outputs(out_path, bvh_path=None, inputs=()):
    """`files.require_writable` for a command's .npz and optional BVH, before any sampling."""
    for path in result_paths(out_path, bvh_path):
        require_writable(path, inputs=inputs)


def save_result(result, out_path, bvh_path=None):
    """`joints` (S,T,22,3), `features` (S,T,263) and `meta` (JSON text) to .npz; sample 0 as BVH."""
    with atomic_outputs(*result_paths(out_path, bvh_path)) as temps:
        write_motion_npz(temps[0], result.joints, result.features, result.meta)
        if bvh_path:
            from ..bvh import write_bvh

            write_bvh(temps[1], result.joints[0], fps=result.meta["fps"])
    if result.meta.get("prompt_read_as"):
        print(f"read the prompt as \"{result.meta['prompt_read_as']}\" (similarity {result.meta['prompt_similarity']}),"
              f" the nearest caption the model was trained on", file=sys.stderr)
    print(f"wrote {out_path}" + (f" and {bvh_path}" if bvh_path else ""), file=sys.stderr)
