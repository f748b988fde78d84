"""Pieces shared by the commands that write motions: a progress bar on stderr, the .npz motion file, and writing a
sampled result atomically."""
import contextlib
import json
import sys

import numpy as np

from ..files import atomic_output


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


def write_motion_npz(path, joints, features, meta):
    """`joints`, `features` and `meta` (a dict, stored as JSON text) to the .npz file `path` (callers pass an
    `atomic_output` path). Written through an open file, so np.savez never appends .npz to a name without it."""
    with open(path, "wb") as f:
        np.savez(f, joints=joints, features=features, meta=np.array(json.dumps(meta)))


def save_result(result, out_path, bvh_path=None):
    """`joints` (S,T,22,3), `features` (S,T,263) and `meta` (JSON text) to .npz; sample 0 as BVH."""
    with atomic_output(out_path) as tmp:
        write_motion_npz(tmp, result.joints, result.features, result.meta)
        if bvh_path:
            from ..bvh import write_bvh

            with atomic_output(bvh_path) as bvh_tmp:
                write_bvh(bvh_tmp, result.joints[0], fps=result.meta["fps"])
    if result.meta.get("prompt_read_as"):
        print(f"read the prompt as \"{result.meta['prompt_read_as']}\" (similarity {result.meta['prompt_similarity']}),"
              f" the nearest caption the model was trained on", file=sys.stderr)
    print(f"wrote {out_path}" + (f" and {bvh_path}" if bvh_path else ""), file=sys.stderr)
