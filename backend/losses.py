"""Training losses on the denoiser's x0 prediction (torch; used by `backend.train`, never at run time).

1. `x0_mse`: MDM's simple objective, the mean squared error of x0 over the real (unpadded) frames, in z-scored
   features.
2. `foot_contact`: MDM's foot-contact loss L_foot (Tevet et al. 2023, Sec. 3), on the joints the features
   recover to. The features keep the root's velocity and the pose relative to the root apart, and the x0 MSE
   weighs them apart, so small errors in each add up to feet that glide (the previous embedded model, given an
   almost clean motion, moved its contact feet 1.6 cm a frame away from the data's). This term measures the two
   together where it shows: the predicted feet's steps on the frames where the data has them on the ground.
   Unlike MDM, which drives those steps to zero, it matches the data's own (HumanML3D's contact rule lets a foot
   roll by up to 4.5 cm a frame).
3. `bone_length`: the recovered joints' bone lengths against the data's. The features hold every joint's position
   on its own (`ric`), so nothing but this term ties a joint to its parent; a model that passes its noisy input
   through (`MDMConfig.input_skip_taps`) otherwise returns limbs whose length wavers from frame to frame.
"""
import torch

from . import skeleton


def x0_mse(x0_hat, x0, valid):
    """Mean over real frames and feature channels of (x0_hat - x0)^2; x0 [B, C, 1, F], valid [B, F] bool."""
    weight = valid[:, None, None, :].to(x0.dtype)  # [B, 1, 1, F]
    return ((x0_hat - x0) ** 2 * weight).sum() / (weight.sum() * x0.shape[1])


def joints_from_features(features):
    """[..., T, 263] raw features -> [..., T, 22, 3] global joints, differentiably (`features.features_to_joints`
    in torch; the heading is a pure yaw, so every rotation is a 2D rotation of X and Z).

    `inpainting.joints_from_features` computes the same joints with quaternions; the two agree only to float
    rounding (about 4e-6 m in float32, and their gradients differ likewise), and training must reproduce the shipped
    weights bit for bit, so the loss keeps this arithmetic."""
    half_yaw = torch.cumsum(features[..., :-1, skeleton.ROOT_YAW_VELOCITY.start], dim=-1)  # [..., T-1]
    angle = 2 * torch.cat([torch.zeros_like(half_yaw[..., :1]), half_yaw], dim=-1)  # [..., T] heading of each frame
    cos, sin = torch.cos(angle), torch.sin(angle)

    def to_world(x, z, cos, sin):  # the heading frame's X, Z -> the world's: the inverse yaw rotation
        return cos * x - sin * z, sin * x + cos * z

    velocity = features[..., :-1, skeleton.ROOT_XZ_VELOCITY]  # [..., T-1, 2] into frames 1..T-1
    step_x, step_z = to_world(velocity[..., 0], velocity[..., 1], cos[..., 1:], sin[..., 1:])
    origin = torch.zeros_like(step_x[..., :1])
    root_x = torch.cat([origin, torch.cumsum(step_x, dim=-1)], dim=-1)  # [..., T]
    root_z = torch.cat([origin, torch.cumsum(step_z, dim=-1)], dim=-1)
    ric = features[..., skeleton.RIC].unflatten(-1, (skeleton.NUM_JOINTS - 1, 3))  # [..., T, 21, 3]
    x, z = to_world(ric[..., 0], ric[..., 2], cos[..., None], sin[..., None])
    joints = torch.stack([x + root_x[..., None], ric[..., 1], z + root_z[..., None]], dim=-1)
    root = torch.stack([root_x, features[..., skeleton.ROOT_HEIGHT.start], root_z], dim=-1)
    return torch.cat([root[..., None, :], joints], dim=-2)  # [..., T, 22, 3]


def _joints(x, mean, std):
    """[B, 263, 1, F] z-scored features -> [B, F, 22, 3] global joints."""
    return joints_from_features(x[:, :, 0].transpose(1, 2) * std + mean)  # [B, F, 263] raw on the way


def foot_contact(x0_hat, x0, valid, mean, std, scale, sample_weight=None):
    """Mean squared difference between predicted and real foot-joint steps (m/frame, divided by `scale`) over the
    transitions t -> t+1 where the real foot is in contact, each window's terms times its `sample_weight` [B]
    (None: 1); x0 [B, 263, 1, F] z-scored, `mean`/`std` (263,) tensors, valid [B, F] bool."""
    def joints(x):  # [B, 263, 1, F] z-scored -> [B, F, 4, 3] contact joints
        return _joints(x, mean, std)[..., skeleton.CONTACT_JOINTS, :]

    step_hat, step = torch.diff(joints(x0_hat), dim=1), torch.diff(joints(x0), dim=1)  # [B, F-1, 4, 3]
    contact = x0[:, skeleton.CONTACT, 0, :-1].transpose(1, 2) * std[skeleton.CONTACT] + mean[skeleton.CONTACT]
    weight = ((contact > 0.5) & valid[:, 1:, None]).to(x0.dtype)  # [B, F-1, 4]: both frames real, foot down
    error = ((step_hat - step) / scale).pow(2).sum(-1)  # [B, F-1, 4]
    if sample_weight is not None:
        error = error * sample_weight[:, None, None]
    return (error * weight).sum() / weight.sum().clamp_min(1.0)


def bone_length(x0_hat, x0, valid, mean, std, scale, sample_weight=None):
    """Mean squared difference between predicted and real bone lengths (m, divided by `scale`) over the real frames
    and the 21 bones, each window's terms times its `sample_weight` [B] (None: 1); shapes as `foot_contact`."""
    parents = list(skeleton.PARENTS[1:])

    def lengths(x):  # [B, 263, 1, F] z-scored -> [B, F, 21]
        joints = _joints(x, mean, std)
        return torch.linalg.vector_norm(joints[..., 1:, :] - joints[..., parents, :], dim=-1)

    error = ((lengths(x0_hat) - lengths(x0)) / scale).pow(2).mean(-1)  # [B, F]
    if sample_weight is not None:
        error = error * sample_weight[:, None]
    weight = valid.to(x0.dtype)
    return (error * weight).sum() / weight.sum().clamp_min(1.0)
