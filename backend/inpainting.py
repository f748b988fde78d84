"""Motion editing with an unconditional-inpainting model: official x0 replacement, RePaint, and keyframe constraints.

Everything is a denoiser wrapper or a sampler over `samplers.Denoiser`, in the network's space: normalised
features [B, 263, 1, F]. Constraints on global joints need raw features, so the HumanML3D Mean/Std are explicit
arguments (`denormalize` / `normalize`); `joints_from_features` is the torch twin of `features.features_to_joints`
(differentiable, for reconstruction guidance).

Keyframes (`keyframes.Keyframes`) here are global joint positions in the generated clip's own frame: frame 0's root
at the XZ origin, facing +Z (HumanML3D's canonical frame, which the features describe). A key at frame 0 taken from
the same canonicalised clip satisfies that by construction.
"""
import math

import numpy as np
import torch

from . import skeleton
from .diffusion import DiffusionSchedule, extract, q_sample, q_step_up
from .errors import UserError
from .keyframes import Keyframes, keyed_half_yaw, keyframe_features, spline_through
from .samplers import Denoiser, NoiseSampler, p_sample, sampling_steps, timestep_batch

FRAME0_ORIGIN_TOLERANCE = 1e-4  # metres: how far a frame-0 root key may sit from the origin (rounding of the keys)


# ---------------------------------------------------------------------------------------------------------------
# Masks (True = keep the given motion) and the official x0 replacement
# ---------------------------------------------------------------------------------------------------------------

def inbetween_mask(lengths, shape, prefix_end=0.25, suffix_start=0.75) -> torch.Tensor:
    """[B, J, C, F] bool keeping frames before prefix_end*length and from suffix_start*length on (official edit)."""
    mask = torch.ones(shape, dtype=torch.bool)
    for i, length in enumerate(lengths):
        mask[i, ..., int(prefix_end * int(length)):int(suffix_start * int(length))] = False
    return mask


def feature_keep_mask(features_kept, shape) -> torch.Tensor:
    """A per-feature (J,) bool mask, every sample and frame: [B, J, C, F]."""
    kept = torch.as_tensor(np.asarray(features_kept), dtype=torch.bool)
    return kept.view(1, -1, 1, 1).expand(shape).clone()


def upper_body_mask(shape) -> torch.Tensor:
    """Official "upper body" edit: keep the root, legs and foot contacts, regenerate the rest."""
    return feature_keep_mask(skeleton.feature_mask(skeleton.LOWER_BODY_JOINTS, contacts=True), shape)


def replace_x0(denoise: Denoiser, known: torch.Tensor, keep: torch.Tensor) -> Denoiser:
    """Official MDM editing: the known region overwrites the x0 prediction before the posterior step.

    Not RePaint: nothing is resampled, so the seam is left to the posterior mean of later steps.
    """
    def edited(x_t, t):
        return torch.where(keep.to(x_t.device), known.to(x_t), denoise(x_t, t))
    return edited


# ---------------------------------------------------------------------------------------------------------------
# RePaint (Lugmayr et al., CVPR 2022)
# ---------------------------------------------------------------------------------------------------------------

def repaint_schedule(num_steps: int, jump_length: int = 10, jump_n_sample: int = 10) -> list[int]:
    """RePaint's time list from T-1 down to -1 (x0): after reaching t = 0, j, 2j, ... (below T - j) the walk jumps
    back up `jump_length` steps, `jump_n_sample - 1` times each. Down moves are model calls:
    T + (T / j - 1) * (r - 1) * j of them (50 steps, j = r = 10: 410).
    """
    if jump_length < 1 or jump_n_sample < 1:
        raise UserError(f"RePaint jump_length and jump_n_sample must be >= 1, got {jump_length}, {jump_n_sample}")
    jumps_left = {t: jump_n_sample - 1 for t in range(0, num_steps - jump_length, jump_length)}
    t, times = num_steps, []
    while t >= 1:
        t -= 1
        times.append(t)
        if jumps_left.get(t, 0) > 0:
            jumps_left[t] -= 1
            for _ in range(jump_length):
                t += 1
                times.append(t)
    times.append(-1)
    return times


@torch.no_grad()
def sample_repaint(denoise: Denoiser, schedule: DiffusionSchedule, x_T, known, keep, noise: NoiseSampler, *,
                   jump_length=10, jump_n_sample=10, progress=None, cancelled=None) -> torch.Tensor:
    """RePaint in x_t space; `progress` counts every move of `repaint_schedule` (down and up)."""
    times = repaint_schedule(schedule.num_steps, jump_length, jump_n_sample)
    moves = list(zip(times[:-1], times[1:]))
    keep, known = keep.to(x_T.device), known.to(x_T)
    x = x_T
    for step in sampling_steps(len(moves), progress, cancelled):
        t_now, t_next = moves[step]
        if t_next < t_now:
            # 1. Unknown part: one ancestral step x_t -> x_{t-1} (RePaint eq. 8 bottom).
            unknown = p_sample(denoise, schedule, x, timestep_batch(t_now, x), noise(x)).sample
            # 2. Known part: the given motion diffused to the same level, q(x_{t-1} | x0) (eq. 8 top); at the end
            #    (t_next = -1) it is the motion itself, so the result holds the known region exactly.
            known_next = known if t_next < 0 else q_sample(schedule, known, timestep_batch(t_next, x), noise(x))
            # 3. x_{t-1} = m * known + (1 - m) * unknown (eq. 9).
            x = torch.where(keep, known_next, unknown)
        else:
            # Resampling: back up one step with q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I) (sec. 4.2).
            x = q_step_up(schedule, x, timestep_batch(t_next, x), noise(x))
    return x


# ---------------------------------------------------------------------------------------------------------------
# Raw features <-> network space, and joint recovery in torch
# ---------------------------------------------------------------------------------------------------------------

def denormalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """Network space [B, 263, 1, F] (z-scored) -> raw HumanML3D features [B, F, 263]."""
    return x[:, :, 0, :].transpose(1, 2) * torch.as_tensor(std).to(x) + torch.as_tensor(mean).to(x)


def normalize(features: torch.Tensor, mean, std) -> torch.Tensor:
    """Raw features [B, F, 263] -> network space [B, 263, 1, F]."""
    z = (features - torch.as_tensor(mean).to(features)) / torch.as_tensor(std).to(features)
    return z.transpose(1, 2)[:, :, None, :]


def qrot(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate v [..., 3] by unit quaternions q [..., 4] (w, x, y, z): v + 2 (w (u x v) + u x (u x v))."""
    q = q.expand(v.shape[:-1] + (4,))
    u = q[..., 1:]
    uv = torch.linalg.cross(u, v)
    return v + 2 * (q[..., :1] * uv + torch.linalg.cross(u, uv))


def qinv(q: torch.Tensor) -> torch.Tensor:
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def root_half_yaw(features: torch.Tensor) -> torch.Tensor:
    """[..., F, 263] raw -> [..., F] heading half-angle about +Y: the integrated yaw velocity, 0 at frame 0."""
    yaw_velocity = features[..., skeleton.ROOT_YAW_VELOCITY.start]
    return torch.cumsum(torch.nn.functional.pad(yaw_velocity[..., :-1], (1, 0)), dim=-1)


def root_rotation_position(features: torch.Tensor):
    """[..., F, 263] raw -> (root quaternion [..., F, 4], root position [..., F, 3]); see features.recover_root."""
    half_yaw = root_half_yaw(features)
    zero = torch.zeros_like(half_yaw)
    root_quat = torch.stack([torch.cos(half_yaw), zero, torch.sin(half_yaw), zero], dim=-1)
    velocity = features[..., :-1, skeleton.ROOT_XZ_VELOCITY]  # heading frame, into the next frame
    step = torch.stack([velocity[..., 0], torch.zeros_like(velocity[..., 0]), velocity[..., 1]], dim=-1)
    step = torch.nn.functional.pad(step, (0, 0, 1, 0))  # [..., F, 3]: frame 0 at the origin
    xz = torch.cumsum(qrot(qinv(root_quat), step), dim=-2)
    root_pos = torch.stack([xz[..., 0], features[..., skeleton.ROOT_HEIGHT.start], xz[..., 2]], dim=-1)
    return root_quat, root_pos


def joints_from_features(features: torch.Tensor) -> torch.Tensor:
    """[..., F, 263] raw features -> [..., F, 22, 3] global joints (official `recover_from_ric`), differentiable."""
    root_quat, root_pos = root_rotation_position(features)
    ric = features[..., skeleton.RIC].unflatten(-1, (skeleton.NUM_JOINTS - 1, 3))  # [..., F, 21, 3]
    body = qrot(qinv(root_quat)[..., None, :], ric)
    body = body + (root_pos * root_pos.new_tensor([1.0, 0.0, 1.0]))[..., None, :]  # ric keeps absolute heights
    return torch.cat([root_pos[..., None, :], body], dim=-2)


# ---------------------------------------------------------------------------------------------------------------
# Keyframes -> feature constraints, root re-anchoring, reconstruction guidance
# ---------------------------------------------------------------------------------------------------------------

def keyframe_inpainting(keys: Keyframes, num_frames: int, mean, std, batch: int = 1):
    """Keys -> (known [B, 263, 1, F] normalised, keep [B, 263, 1, F] bool) for `replace_x0` or `sample_repaint`."""
    values, known = keyframe_features(keys, num_frames)
    x = normalize(torch.from_numpy(values)[None].float(), mean, std).expand(batch, -1, -1, -1)
    keep = torch.from_numpy(known).T[None, :, None, :].expand(batch, -1, -1, -1)
    return x.contiguous(), keep.contiguous()


def spread_between_keys(frames, corrections: torch.Tensor, num_frames: int) -> torch.Tensor:
    """corrections [..., K] at increasing `frames` -> [..., F] by `keyframes.spline_through` (no kink at a key),
    constant before and after the keys. CPU tensors (anchor_root works in CPU float64)."""
    spread = spline_through(frames, np.moveaxis(corrections.numpy(), -1, 0), num_frames)
    return torch.from_numpy(np.moveaxis(spread, 0, -1)).to(corrections)


def _from_origin(frames, corrections):
    """Prepend a zero correction at frame 0: heading and XZ are 0 there by definition of the features."""
    if int(frames[0]) == 0:
        return frames, corrections
    return np.concatenate([[0], frames]), torch.nn.functional.pad(corrections, (1, 0))


def anchor_root(features: torch.Tensor, keys: Keyframes) -> torch.Tensor:
    """Raw features [..., F, 263] -> the same motion with the root passing EXACTLY through every keyed root.

    HumanML3D stores the root as per-frame yaw and XZ velocities, so a root position is the integral of every
    earlier velocity: fixing it by editing one frame would move all later frames (drift, official issue #108) or
    pop. Instead the errors at the keys are spread over the gaps by a smooth spline through them
    (`keyframes.spline_through`): the path bends evenly, with no kink at a key, and every key is met. Frame 0 is
    the origin by definition, so the first gap bends from there; after the last key the motion keeps its own
    velocities. The heading at keys that fix it is anchored the same way (ric, rot and velocities are in the heading
    frame, so the body turns with it), and the height correction moves the root and every joint height together.
    """
    num_frames = features.shape[-2]
    keys.validate(num_frames)
    work = features.detach().to("cpu", torch.float64, copy=True)  # float64 on the CPU: any device, exact sums
    _, root_pos = root_rotation_position(work)
    half_yaw = root_half_yaw(work)  # [..., F], unwrapped (a clip may turn more than once)
    rooted = keys.joint_mask[:, 0]
    if keys.frames[0] == 0 and rooted[0] and np.abs(keys.joints[0, 0, [0, 2]]).max() > FRAME0_ORIGIN_TOLERANCE:
        raise UserError(f"the key at frame 0 has its root at XZ {keys.joints[0, 0, [0, 2]].round(4).tolist()}, but a "
                        f"clip's frame 0 is its origin: express the keys in the clip's own frame (root of frame 0 "
                        f"at x = z = 0)")

    # 1. Heading: wrap each key's error to the nearest equivalent turn (half angles repeat every pi), unwrapped
    #    from key to key so the correction never takes the long way round.
    target = keyed_half_yaw(keys)
    with_yaw = rooted & ~np.isnan(target) & (keys.frames > 0)
    if with_yaw.any():
        frames = keys.frames[with_yaw]
        error = torch.from_numpy(target[with_yaw]).to(work) - half_yaw[..., frames]
        frames, error = _from_origin(frames, error)
        step = torch.diff(error, dim=-1)
        step = step - math.pi * torch.round(step / math.pi)
        error = torch.cat([error[..., :1], error[..., :1] + torch.cumsum(step, dim=-1)], dim=-1)
        half_yaw = half_yaw + spread_between_keys(frames, error, num_frames)

    # 2. Root XZ and height: smooth offsets of the world path, zero at frame 0 for XZ.
    if rooted.any():
        frames = keys.frames[rooted]
        error = torch.from_numpy(keys.joints[rooted, 0]).to(work) - root_pos[..., frames, :]  # [..., K, 3]
        xz_frames, xz_error = _from_origin(frames, error[..., [0, 2]].transpose(-1, -2))
        xz_shift = spread_between_keys(xz_frames, xz_error, num_frames).transpose(-1, -2)  # [..., F, 2]
        root_pos[..., [0, 2]] = root_pos[..., [0, 2]] + xz_shift
        height_shift = spread_between_keys(frames, error[..., 1], num_frames)  # [..., F]
        work[..., skeleton.ROOT_HEIGHT.start] += height_shift
        work[..., skeleton.RIC.start + 1:skeleton.RIC.stop:3] += height_shift[..., None]

    # 3. Back to velocities: yaw_vel[i] = theta[i+1] - theta[i]; xz_vel[i] = R(theta[i+1]) (p[i+1] - p[i]), the
    #    exact inverse of the recovery's cumulative sums.
    work[..., :-1, skeleton.ROOT_YAW_VELOCITY.start] = torch.diff(half_yaw, dim=-1)
    zero = torch.zeros_like(half_yaw)
    quat = torch.stack([torch.cos(half_yaw), zero, torch.sin(half_yaw), zero], dim=-1)
    world_step = torch.diff(root_pos, dim=-2) * root_pos.new_tensor([1.0, 0.0, 1.0])
    work[..., :-1, skeleton.ROOT_XZ_VELOCITY] = qrot(quat[..., 1:, :], world_step)[..., [0, 2]]
    return work.to(features)


def keyframe_error(joints: torch.Tensor, keys: Keyframes) -> torch.Tensor:
    """[..., F, 22, 3] -> [...]: mean squared distance (m^2) of the keyed joints to their keys."""
    target = torch.from_numpy(keys.joints).to(joints)
    mask = torch.from_numpy(keys.joint_mask).to(joints)[..., None]
    squared = (mask * (joints[..., keys.frames, :, :] - target) ** 2).sum(dim=(-3, -2, -1))
    return squared / mask.sum()


def reconstruction_guidance(denoise: Denoiser, schedule: DiffusionSchedule, keys: Keyframes, mean, std,
                            weight: float = 1.0) -> Denoiser:
    """Keyframe reconstruction guidance (Ho et al. 2022, Video Diffusion Models, eq. 7):
    x0_tilde = x0_hat - (w sqrt(alpha_bar_t) / 2) grad_{x_t} ||keys - joints(x0_hat(x_t))||^2,
    the error being the mean over the keyed joints (so `weight` does not depend on how many joints are keyed).

    The gradient flows through the denoiser and the torch joint recovery, so every feature (velocities included)
    is pulled toward poses that hit the keys, not just the features a key fixes. Costs one backward per step.
    """
    def guided(x_t, t):
        with torch.enable_grad():
            x_in = x_t.detach().requires_grad_(True)
            x0_hat = denoise(x_in, t)
            error = keyframe_error(joints_from_features(denormalize(x0_hat, mean, std)), keys).sum()
            (grad,) = torch.autograd.grad(error, x_in)
        return (x0_hat - weight * extract(schedule.sqrt_alpha_bar, t, x_t) / 2 * grad).detach()
    return guided
