"""`import-official MODEL.pt --out DIR`: an official MDM checkpoint -> a self-describing checkpoint folder, verified by
reloading the folder and comparing its outputs with the .pt model's on a fixed input."""
import shutil
import sys
import tempfile
from pathlib import Path

from ..errors import UserError
from ..files import require_writable

TOLERANCE = 1e-6  # same weights, same code: the outputs should be identical


def add_arguments(parser):
    parser.add_argument("checkpoint", help="official model file, e.g. humanml_trans_enc_512/model000475000.pt")
    parser.add_argument("--args", dest="args_json", help="its args.json (default: beside the .pt)")
    parser.add_argument("--mean", help="HumanML3D Mean.npy the model was trained with (default: beside the .pt)")
    parser.add_argument("--std", help="HumanML3D Std.npy the model was trained with (default: beside the .pt)")
    parser.add_argument("--out", required=True, help="the checkpoint folder to create (new or empty)")


def run(args):
    from ..checkpoints import load_checkpoint, load_folder, max_output_difference, save_folder

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists and is not an empty folder; choose a new output folder")
    require_writable(out, folder=True)
    source = load_checkpoint(args.checkpoint, "cpu", args.mean, args.std, args.args_json)
    meta = {k: v for k, v in source.meta.items() if k != "path"}
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent if out.parent.exists() else None))
    try:  # write and verify beside the target, so a failed check leaves nothing behind
        folder = save_folder(staging / "checkpoint", source.model, source.config, source.mean, source.std, meta)
        difference = max_output_difference(source.model, load_folder(folder).model, source.config)
        print(f"max abs difference, folder vs {Path(args.checkpoint).name}: {difference:.3e}")
        if not difference <= TOLERANCE:
            raise UserError(f"the converted checkpoint does not reproduce {args.checkpoint} "
                            f"(max abs difference {difference:.3e} > {TOLERANCE:.0e}); nothing was written")
        if out.exists():
            out.rmdir()  # empty, checked above
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(folder), str(out))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"wrote {out}", file=sys.stderr)
