"""Pieces shared by the sampling commands: a progress bar on stderr and writing a result atomically."""
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


def save_result(result, out_path, bvh_path=None, bvh_sample=0):
    """`joints` (S,T,22,3), `features` (S,T,263) and `meta` (JSON text) to .npz; sample `bvh_sample` as BVH."""
    with atomic_output(out_path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, joints=result.joints, features=result.features, meta=np.array(json.dumps(result.meta)))
        if bvh_path:
            from ..bvh import write_bvh

            with atomic_output(bvh_path) as bvh_tmp:
                write_bvh(bvh_tmp, result.joints[bvh_sample], fps=result.meta["fps"])
    if result.meta.get("prompt_read_as"):
        print(f"read the prompt as \"{result.meta['prompt_read_as']}\" (similarity {result.meta['prompt_similarity']}),"
              f" the nearest caption the model was trained on", file=sys.stderr)
    print(f"wrote {out_path}" + (f" and {bvh_path}" if bvh_path else ""), file=sys.stderr)
