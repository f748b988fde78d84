"""Command-line subcommands of `python -m backend`: one module each, with `add_arguments(parser)` and `run(args)`."""
