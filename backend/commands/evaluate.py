"""`evaluate`: a checkpoint's plausibility, in-betweening and text adherence on a mocap folder's eval clips."""


def add_arguments(parser):
    parser.add_argument("--checkpoint", help="model folder or official .pt (default: the embedded model)")
    parser.add_argument("--data", required=True,
                        help="mocap folder laid out like shared/mocap/cmu: index.csv and the BVH files it lists; "
                             "rows with split=eval are evaluated (all rows without a split column)")
    parser.add_argument("--classifier-data",
                        help="mocap folder whose split=train rows teach the adherence classifier (default: --data)")
    parser.add_argument("--out", help="folder for metrics.json and contact_sheet.png")
    parser.add_argument("--json", action="store_true", help="print one JSON object to stdout (logs go to stderr)")
    parser.add_argument("--quick", action="store_true", help="smoke-test budget (1 short window per clip, 2 steps)")
    parser.add_argument("--windows", type=int, help="windows per eval clip (default 2)")
    parser.add_argument("--samples", type=int, help="samples per window and per prompt (default 1)")
    parser.add_argument("--steps", type=int, help="sampling steps (default 50; 0 = all the model's)")
    parser.add_argument("--frames", type=int, help="window length in frames (default or 0: the model's longest, "
                                                   "<= 196)")
    parser.add_argument("--gaps", type=int, nargs="+", help="key gaps in frames (default 5 10 20 40)")
    parser.add_argument("--methods", nargs="+",
                        help="in-betweening methods besides the model's default (default: all it supports)")
    parser.add_argument("--prompts-per-category", type=int, help="held-out prompts per category (default 5)")
    parser.add_argument("--seed", type=int, help="seed of every random choice (default 0)")
    parser.add_argument("--literal-prompts", action="store_true",
                        help="adherence: condition on each prompt's own embedding, not on the nearest caption the "
                             "model was trained on (models that ship their captions read prompts that way)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (default: torch's choice; 1 is fastest on a busy shared CPU)")
    parser.add_argument("--clip", help="CLIP ViT-B/32 weights file (official text models)")


def options_from(args):
    from ..evaluate import EvalOptions

    given = {"windows_per_clip": args.windows, "samples": args.samples, "steps": args.steps, "frames": args.frames,
             "gaps": tuple(args.gaps) if args.gaps else None, "methods": tuple(args.methods) if args.methods else None,
             "prompts_per_category": args.prompts_per_category, "seed": args.seed,
             "classifier_data": args.classifier_data, "literal_prompts": args.literal_prompts or None}
    given = {k: v for k, v in given.items() if v is not None}
    return EvalOptions.quick(**given) if args.quick else EvalOptions(**given)


def check_options(options):
    from ..errors import UserError

    for name in ("windows_per_clip", "samples", "prompts_per_category"):
        if getattr(options, name) < 1:
            raise UserError(f"--{name.replace('_per_clip', '').replace('_', '-')} must be at least 1")
    if options.steps < 0 or options.frames < 0 or any(g < 1 for g in options.gaps):
        raise UserError("--steps and --frames must be >= 0 (0: the model's own) and every --gaps value >= 1")


def run(args):
    import contextlib
    import json
    import sys

    from ..errors import UserError
    from ..evaluate import evaluate, format_table, read_eval_rows, write_outputs
    from ..files import require_writable
    from ..pipeline import Pipeline

    def log(message):
        print(message, file=sys.stderr, flush=True)

    import torch

    options = options_from(args)
    check_options(options)
    if args.threads < 0:
        raise UserError(f"--threads must be >= 0 (0: torch's choice), got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    read_eval_rows(args.data)  # a bad data folder, or an output folder that cannot be written, fails at once
    if args.out:
        require_writable(args.out, folder=True)
    # Libraries that print (model loaders) must not corrupt the one JSON object on stdout.
    with contextlib.redirect_stdout(sys.stderr):
        pipeline = Pipeline(args.checkpoint, args.device, clip_path=args.clip)
        evaluation = evaluate(pipeline, args.data, options, log)
        if args.out:
            write_outputs(evaluation, args.out)
            log(f"wrote {args.out}")
    print(json.dumps(evaluation.report) if args.json else format_table(evaluation.report))
