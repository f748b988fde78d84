"""`info --checkpoint PATH`: what a checkpoint is (architecture, size, conditions, actions, frame range)."""
import json


def add_arguments(parser):
    parser.add_argument("--checkpoint", required=True, help="a checkpoint folder, or an official .pt")
    parser.add_argument("--args", dest="args_json", help="args.json of an official .pt (default: beside it)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def describe(model, config, meta) -> dict:
    c = config
    condition = {"mode": c.cond_mode}
    if c.cond_mode == "text":
        condition.update(text_encoder=c.text_encoder, embedding_dim=c.cond_dim)
    if c.cond_mode == "action":
        condition.update(num_actions=c.num_actions, action_names=c.action_names)
    condition["classifier_free_guidance"] = c.cond_mask_prob > 0  # trained with condition dropout
    return dict(
        architecture=dict(arch=c.arch, emb_trans_dec=c.emb_trans_dec, num_layers=c.num_layers,
                          latent_dim=c.latent_dim, ff_size=c.ff_size, num_heads=c.num_heads,
                          activation=c.activation, keyframe_dim=c.keyframe_dim),
        parameters=sum(p.numel() for p in model.parameters()),
        representation=dict(data_rep=c.data_rep, njoints=c.njoints, nfeats=c.nfeats, dataset=c.dataset),
        condition=condition,
        diffusion=dict(steps=c.diffusion_steps, noise_schedule=c.noise_schedule),
        frames=meta["frames"],
    )


def run(args):
    from ..checkpoints import existing_checkpoint, frame_range, load_folder, load_official

    path = existing_checkpoint(args.checkpoint)
    if path.is_dir():
        loaded = load_folder(path)
        model, config, meta = loaded.model, loaded.config, loaded.meta
    else:
        model, config = load_official(path, args.args_json)
        meta = {"frames": frame_range(config, {})}
    info = describe(model, config, meta)
    if args.json:
        print(json.dumps(info))
        return
    a, cond, frames = info["architecture"], info["condition"], info["frames"]
    print(f"checkpoint:     {path}")
    print(f"architecture:   {a['arch']}{' (time token)' if a['emb_trans_dec'] else ''}, {a['num_layers']} layers, "
          f"latent {a['latent_dim']}, ff {a['ff_size']}, {a['num_heads']} heads, {a['activation']}"
          f"{', keyframe input (%d channels)' % a['keyframe_dim'] if a['keyframe_dim'] else ''}")
    print(f"parameters:     {info['parameters']:,}")
    r = info["representation"]
    print(f"motion:         {r['data_rep']} [{r['njoints']} x {r['nfeats']}] ({r['dataset']})")
    text = {"text": f"text ({cond.get('text_encoder')}, {cond.get('embedding_dim')}-d)",
            "action": f"action ({cond.get('num_actions')} classes)", "no_cond": "none (unconditional)"}
    guidance = "classifier-free guidance" if cond["classifier_free_guidance"] else "no guidance"
    print(f"condition:      {text[cond['mode']]}, {guidance}")
    if cond["mode"] == "action":
        names = ", ".join(f"{i}: {n}" for i, n in enumerate(cond["action_names"]))
        print(f"actions:        {names or 'indices 0-%d (no names stored)' % (cond['num_actions'] - 1)}")
    print(f"diffusion:      {info['diffusion']['steps']} steps, {info['diffusion']['noise_schedule']} schedule")
    fps = frames["fps"]
    print(f"frames:         {frames['min_frames']}-{frames['max_frames']} at {fps} fps "
          f"({frames['min_frames'] / fps:.1f}-{frames['max_frames'] / fps:.1f} s)")
