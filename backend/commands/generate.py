"""`generate`: text or action -> S motions (joints + features .npz, optional BVH), progress on stderr."""
from .common import finite_float


def add_arguments(parser):
    parser.add_argument("--checkpoint", help="model folder or official .pt (default: the embedded model)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--text", default="", help="the prompt")
    what.add_argument("--action", default="", help="an action name (see `info`)")
    parser.add_argument("--seconds", type=finite_float, default=6.0)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=0, help="sampling steps (default: all the model's steps)")
    parser.add_argument("--sampler", choices=("ddpm", "ddim"), default="ddpm")
    parser.add_argument("--guidance", type=finite_float, default=2.5, help="classifier-free guidance scale")
    parser.add_argument("--no-plant-feet", dest="plant_feet", action="store_false",
                        help="keep the model's own root path, even where a planted foot slides")
    parser.add_argument("--literal-prompt", action="store_true",
                        help="condition on the prompt as typed, not on the nearest caption the model was trained on "
                             "(models that ship their captions, such as the embedded one, read prompts that way)")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    parser.add_argument("--clip", help="CLIP ViT-B/32 weights file (official text models)")
    parser.add_argument("--out", required=True, help="output .npz")
    parser.add_argument("--bvh", help="also write sample 0 as a BVH")


def run(args):
    from ..pipeline import MotionRequest, Pipeline
    from .common import progress_bar, require_outputs, save_result

    require_outputs(args.out, args.bvh)
    pipeline = Pipeline(args.checkpoint, args.device, clip_path=args.clip)
    request = MotionRequest(text=args.text, action=args.action,
                            frames=round(args.seconds * pipeline.loaded.frames["fps"]), samples=args.samples,
                            seed=args.seed, guidance=args.guidance, steps=args.steps, sampler=args.sampler,
                            plant_feet=args.plant_feet, literal_prompt=args.literal_prompt)
    with progress_bar("sampling") as progress:
        result = pipeline.generate_long(request, progress=progress)  # chained past the model's window
    save_result(result, args.out, args.bvh)
