"""`python -m backend COMMAND ...`: the backend's command line. Each command lives in `backend/commands/<name>.py`."""
import argparse
import importlib
import sys

from .errors import UserError

# (command, module in backend.commands, one-line help). Command modules import torch inside `run`, never at
# module level, so building the parser and running the numpy-only commands stay fast.
COMMANDS = (
    ("convert", "convert", "BVH clip -> 22 joints + 263 HumanML3D features (.npz)"),
    ("export-bvh", "export_bvh", "22-joint motion (.npz) -> BVH on an SMPL-proportioned skeleton"),
    ("check-fixture", "check_fixture", "reproduce every array of an official-MDM golden fixture"),
)


def build_parser(commands=COMMANDS):
    parser = argparse.ArgumentParser(prog="python -m backend", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name, help_text in commands:
        module = importlib.import_module(f"backend.commands.{module_name}")
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(cmd)
        cmd.set_defaults(run=module.run)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
