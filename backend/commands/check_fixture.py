"""`check-fixture DIR`: reproduce every array of an official-MDM golden fixture; exit 1 on any FAIL."""


def add_arguments(parser):
    parser.add_argument("directory", help="a folder laid out like shared/fixtures/mdm_official")


def run(args):
    from ..fixture_check import run_checks

    return 0 if run_checks(args.directory) else 1
