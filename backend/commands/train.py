"""`train --config CONFIG.json`: train (or resume) a model; see backend/train.py."""


def add_arguments(parser):
    parser.add_argument("--config", required=True, help="training config JSON (e.g. configs/embedded.json)")
    parser.add_argument("--data-dir", help="override the config's prepared-data folder")
    parser.add_argument("--out-dir", help="override the config's output folder")
    parser.add_argument("--steps", type=int, help="override the number of steps")
    parser.add_argument("--stop-after", type=int,
                        help="end this run after N steps (resume later with the same command)")


def run(args):
    from ..train import TrainConfig, train

    train(TrainConfig.load(args.config, data_dir=args.data_dir, out_dir=args.out_dir, steps=args.steps),
          stop_after=args.stop_after)
