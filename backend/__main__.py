"""`python -m backend COMMAND ...`: the backend's command line. Each command lives in `backend/commands/<name>.py`."""
import argparse
import importlib
import sys

from .errors import UserError

# (command, module in backend.commands, one-line help). Only the chosen command's module is imported, and command
# modules import torch inside `run`, so the numpy-only commands never pay for torch.
COMMANDS = (
    ("demo", "demo", "the README's main job"),
    ("convert", "convert", "BVH clip -> 22 joints + 263 HumanML3D features (.npz)"),
    ("export-bvh", "export_bvh", "22-joint motion (.npz) -> BVH on a T-pose skeleton with the motion's bone lengths"),
    ("check-fixture", "check_fixture", "reproduce every array of an official-MDM golden fixture"),
    ("import-official", "import_official", "official MDM .pt + args.json + Mean/Std -> checkpoint folder (verified)"),
    ("info", "info", "describe a checkpoint: architecture, size, conditions, actions, frame range"),
    ("generate", "generate", "text or action -> motions (.npz joints + features, optional BVH)"),
    ("inbetween", "inbetween", "keyed poses -> motion through every key"),
    ("serve", "serve", "the backend as a subprocess: JSON lines over stdio (docs/protocol.md)"),
    ("bench", "bench", "speed and memory: our sampling path vs the official recipe, side by side"),
    ("train", "train", "train an MDM denoiser on prepared data (also under torchrun)"),
    ("evaluate", "evaluate", "plausibility, in-betweening and text adherence of a checkpoint on real eval clips"),
    ("prepare-data", "prepare_data", "CMU train clips + procedural motion -> captioned 263-feature windows, Mean/Std"),
)


def build_parser(selected=None):
    """The parser; only the `selected` command's module is imported (all of them when None, for --help)."""
    parser = argparse.ArgumentParser(prog="python -m backend", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if selected in (None, name):
            module = importlib.import_module(f"backend.commands.{module_name}")
            module.add_arguments(cmd)
            cmd.set_defaults(run=module.run)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    names = {name for name, _, _ in COMMANDS}
    args = build_parser(argv[0] if argv and argv[0] in names else None).parse_args(argv)
    try:
        return args.run(args) or 0
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
