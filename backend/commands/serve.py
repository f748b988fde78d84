"""`serve --stdio`: the backend as a subprocess speaking JSON lines on stdin/stdout (docs/protocol.md)."""


def add_arguments(parser):
    parser.add_argument("--stdio", action="store_true", required=True,
                        help="speak JSON lines on stdin/stdout (the only transport; no network port is opened)")


def run(args):
    from ..server import serve

    serve()
