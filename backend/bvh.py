"""BVH motion files: read any BVH, run forward kinematics, and write one back."""
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import rotations, skeleton
from .errors import UserError
from .features import check_joints

J = skeleton.JOINT_INDEX
END_SITE = " End Site"  # an End Site is stored as a channel-less leaf named "<parent name> End Site"
ROTATION_CHANNELS = {"Xrotation": 0, "Yrotation": 1, "Zrotation": 2}
POSITION_CHANNELS = {"Xposition": 0, "Yposition": 1, "Zposition": 2}
_FRAMES = re.compile(r"Frames:\s*(\S+)\s*$")
_FRAME_TIME = re.compile(r"Frame\s+Time:\s*(\S+)\s*$")


@dataclass
class Bvh:
    """A parsed BVH file. Nodes are in file order, so every parent comes before its children."""

    names: list  # (J,) joint names; End Sites are named "<parent> End Site"
    parents: np.ndarray  # (J,) int, -1 for the root
    offsets: np.ndarray  # (J, 3) OFFSET of each node from its parent, file units
    channels: list  # (J,) tuple of channel names per node, e.g. ("Zrotation", "Xrotation", "Yrotation")
    frame_time: float  # seconds per frame as the header states it (often wrong for CMU: see mocap.py)
    motion: np.ndarray  # (F, C) channel values per frame, C = total channel count, file order

    @property
    def num_frames(self):
        return self.motion.shape[0]

    def index(self, name):
        return self.names.index(name)

    def channel_columns(self):
        """(J,) first column of each node's channels in `motion`."""
        counts = [len(c) for c in self.channels]
        return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int)


def read_bvh(path):
    """Read a BVH file; a missing, unreadable or malformed file raises UserError naming the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror})") from None
    return parse_bvh(text, source=str(path))


def parse_bvh(text, source="<bvh>"):
    """Parse BVH text: any channel order, 0/3/6 channels on any joint, End Sites, tabs and CRLF."""
    lines = text.splitlines()
    hierarchy, motion_line = _parse_hierarchy(lines, source)
    frames, frame_time, data_line = _parse_motion_header(lines, motion_line, source)
    num_channels = sum(len(c) for c in hierarchy["channels"])
    motion = _parse_motion_data(lines, data_line, frames, num_channels, source)
    return Bvh(frame_time=frame_time, motion=motion, **hierarchy)


def _fail(source, line_index, message):
    raise UserError(f"{source}, line {line_index + 1}: {message} (malformed BVH)")


def _parse_hierarchy(lines, source):
    """Walk HIERARCHY ... MOTION; returns the node arrays and the index of the MOTION line."""
    names, parents, offsets, channels = [], [], [], []
    stack = []  # indices of the nodes whose "{" is open
    pending = None  # node declared by ROOT/JOINT/End Site, waiting for its "{"
    seen_hierarchy = False
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            continue
        keyword, _, rest = line.replace("\t", " ").partition(" ")
        rest = rest.strip()
        if not seen_hierarchy:
            if keyword != "HIERARCHY":
                _fail(source, i, f"expected HIERARCHY, found {line[:40]!r}")
            seen_hierarchy = True
        elif keyword in ("ROOT", "JOINT") or [t.lower() for t in line.split()[:2]] == ["end", "site"]:
            if pending is not None:
                _fail(source, i, f"{names[pending]!r} has no '{{'")
            if keyword == "ROOT" and (stack or names):
                _fail(source, i, "a second ROOT (files with several skeletons are not supported)")
            if keyword != "ROOT" and not stack:
                _fail(source, i, f"{line!r} outside any joint")
            if keyword != "ROOT" and names[stack[-1]].endswith(END_SITE):
                _fail(source, i, f"End Site of {names[parents[stack[-1]]]!r} cannot have children")
            name = names[stack[-1]] + END_SITE if keyword not in ("ROOT", "JOINT") else rest
            if not name:
                _fail(source, i, f"{keyword} without a name")
            if name in names:
                _fail(source, i, f"joint name {name!r} is used twice")
            names.append(name)
            parents.append(stack[-1] if stack else -1)
            offsets.append(None)
            channels.append(())
            pending = len(names) - 1
        elif line == "{":
            if pending is None:
                _fail(source, i, "'{' without a ROOT, JOINT or End Site before it")
            stack.append(pending)
            pending = None
        elif line == "}":
            if not stack:
                _fail(source, i, "unmatched '}'")
            node = stack.pop()
            if offsets[node] is None:
                _fail(source, i, f"{names[node]!r} has no OFFSET")
        elif keyword == "OFFSET":
            node = _open_node(stack, pending, source, i, keyword)
            offsets[node] = _floats(rest.split(), 3, source, i, f"OFFSET of {names[node]!r}")
        elif keyword == "CHANNELS":
            node = _open_node(stack, pending, source, i, keyword)
            channels[node] = _channels(rest.split(), source, i, names[node])
        elif keyword == "MOTION":
            if stack or pending is not None:
                _fail(source, i, f"MOTION before the hierarchy is closed ({len(stack)} '{{' still open)")
            if not names:
                _fail(source, i, "no ROOT in HIERARCHY")
            hierarchy = dict(names=names, parents=np.array(parents), offsets=np.array(offsets, dtype=np.float64),
                             channels=channels)
            return hierarchy, i
        else:
            _fail(source, i, f"unexpected {line[:40]!r}")
    raise UserError(f"{source}: no MOTION section (malformed BVH, or not a BVH file)")


def _open_node(stack, pending, source, i, keyword):
    if pending is not None or not stack:
        _fail(source, i, f"{keyword} outside a joint's braces")
    return stack[-1]


def _floats(tokens, count, source, i, what):
    if len(tokens) != count:
        _fail(source, i, f"{what} needs {count} numbers, found {len(tokens)}")
    try:
        return [float(t) for t in tokens]
    except ValueError:
        _fail(source, i, f"{what} is not a number: {' '.join(tokens)!r}")


def _channels(tokens, source, i, name):
    if name.endswith(END_SITE):
        _fail(source, i, f"{name} cannot have CHANNELS")
    if not tokens or not tokens[0].isdigit() or int(tokens[0]) != len(tokens) - 1:
        _fail(source, i, f"CHANNELS of {name!r} must be a count followed by that many channel names")
    names = tuple(tokens[1:])
    unknown = [c for c in names if c not in ROTATION_CHANNELS and c not in POSITION_CHANNELS]
    if unknown or len(set(names)) != len(names):
        _fail(source, i, f"bad channel list for {name!r}: {' '.join(names)}")
    return names


def _parse_motion_header(lines, motion_line, source):
    """The `Frames:` and `Frame Time:` lines after MOTION; returns (frames, frame_time, first data line)."""
    found = []
    i = motion_line + 1
    for pattern, what in ((_FRAMES, "Frames: N"), (_FRAME_TIME, "Frame Time: SECONDS")):
        while i < len(lines) and not lines[i].strip():
            i += 1
        match = pattern.match(lines[i].strip()) if i < len(lines) else None
        if match is None:
            _fail(source, min(i, len(lines) - 1), f"expected '{what}' after MOTION")
        try:
            found.append(float(match.group(1)))
        except ValueError:
            _fail(source, i, f"'{what}' is not a number: {match.group(1)!r}")
        i += 1
    frames, frame_time = found
    if frames != int(frames) or frames < 0:
        _fail(source, i - 2, f"Frames must be a whole number, found {frames:g}")
    if frame_time <= 0:
        _fail(source, i - 1, f"Frame Time must be positive, found {frame_time:g}")
    return int(frames), frame_time, i


def _parse_motion_data(lines, first, frames, num_channels, source):
    """One row of `num_channels` numbers per frame, parsed by numpy in one call."""
    rows = [(i, line) for i, line in enumerate(lines[first:], first) if line.strip()]
    if len(rows) != frames:
        _fail(source, rows[-1][0] if rows else len(lines) - 1,
              f"the header says Frames: {frames} but there are {len(rows)} rows of motion data")
    flat = " ".join(line for _, line in rows).split()
    if len(flat) == frames * num_channels:
        try:
            return np.array(flat, dtype=np.float64).reshape(frames, num_channels)
        except ValueError:
            pass
    for i, line in rows:  # slow path, only to say where the error is
        tokens = line.split()
        if len(tokens) != num_channels:
            _fail(source, i, f"motion row has {len(tokens)} values, the hierarchy has {num_channels} channels")
        _floats(tokens, num_channels, source, i, "motion row")
    raise UserError(f"{source}: unreadable motion data (malformed BVH)")


def axis_rotations(angles, axis):
    """(..., 3, 3) rotation matrices by `angles` radians about axis 0 (X), 1 (Y) or 2 (Z)."""
    c, s = np.cos(angles), np.sin(angles)
    i, j = (axis + 1) % 3, (axis + 2) % 3
    m = np.zeros(angles.shape + (3, 3))
    m[..., axis, axis] = 1.0
    m[..., i, i] = c
    m[..., j, j] = c
    m[..., j, i] = s
    m[..., i, j] = -s
    return m


def local_transforms(bvh, nodes):
    """(F, J, 3, 3) local rotations and (F, J, 3) local translations of `nodes` (the others stay identity/OFFSET).

    Rotation channels compose in their listed order (Z Y X means R = Rz·Ry·Rx). Position channels replace the
    OFFSET (the convention of CMU's and most exporters' root; Blender's importer reads the root the same way).
    """
    num_frames, num_nodes = bvh.num_frames, len(bvh.names)
    rotations = np.broadcast_to(np.eye(3), (num_frames, num_nodes, 3, 3)).copy()
    translations = np.broadcast_to(bvh.offsets, (num_frames, num_nodes, 3)).copy()
    columns = bvh.channel_columns()
    for j in nodes:
        for k, channel in enumerate(bvh.channels[j]):
            values = bvh.motion[:, columns[j] + k]
            if channel in ROTATION_CHANNELS:
                rotations[:, j] = rotations[:, j] @ axis_rotations(np.radians(values), ROTATION_CHANNELS[channel])
            else:
                translations[:, j, POSITION_CHANNELS[channel]] = values
    return rotations, translations


def forward_kinematics(bvh, nodes=None):
    """(F, J, 3) world positions and (F, J, 3, 3) world rotations of every node (End Sites included), file units.

    A child's world rotation is parent·local and its position is parent position + parent rotation · offset.
    With `nodes`, only those and their ancestors are computed (the rest are NaN): a 100-bone production rig
    needs about 20 of them.
    """
    needed = np.zeros(len(bvh.names), dtype=bool)
    for j in range(len(bvh.names)) if nodes is None else nodes:
        while j >= 0 and not needed[j]:
            needed[j], j = True, bvh.parents[j]
    order = np.flatnonzero(needed)  # file order: parents first
    local_rot, local_pos = local_transforms(bvh, order)
    world_rot = np.full_like(local_rot, np.nan)
    world_pos = np.full_like(local_pos, np.nan)
    for j in order:
        p = bvh.parents[j]
        if p < 0:
            world_rot[:, j], world_pos[:, j] = local_rot[:, j], local_pos[:, j]
        else:
            world_rot[:, j] = world_rot[:, p] @ local_rot[:, j]
            world_pos[:, j] = world_pos[:, p] + np.einsum("fab,fb->fa", world_rot[:, p], local_pos[:, j])
    return world_pos, world_rot


# ---------------------------------------------------------------------------------------------------------------
# Writing: any Bvh to text, and 22-joint positions to a Bvh on a T-pose skeleton with the motion's bone lengths
# ---------------------------------------------------------------------------------------------------------------

POSITION_CHANNEL_NAMES = ("Xposition", "Yposition", "Zposition")


def format_bvh(bvh, decimals=6):
    """BVH text for `bvh`, whose nodes must be in depth-first order (as `parse_bvh` returns them)."""
    lines = ["HIERARCHY"]
    open_nodes = []
    for j, (name, parent) in enumerate(zip(bvh.names, bvh.parents)):
        while open_nodes and open_nodes[-1] != parent:
            open_nodes.pop()
            lines.append("\t" * len(open_nodes) + "}")
        if (parent < 0) != (not open_nodes):
            raise ValueError(f"node {name!r} is not in depth-first order after its parent")
        indent = "\t" * len(open_nodes)
        end_site = name.endswith(END_SITE)
        lines.append(indent + ("End Site" if end_site else f"{'JOINT' if open_nodes else 'ROOT'} {name}"))
        lines.append(indent + "{")
        lines.append(indent + "\tOFFSET " + " ".join(f"{v:.{decimals}f}" for v in bvh.offsets[j]))
        if not end_site:
            lines.append(indent + f"\tCHANNELS {len(bvh.channels[j])} " + " ".join(bvh.channels[j]))
        open_nodes.append(j)
    lines += ["\t" * depth + "}" for depth in reversed(range(len(open_nodes)))]
    lines += ["MOTION", f"Frames: {bvh.num_frames}", f"Frame Time: {bvh.frame_time:.8f}"]
    row = " ".join([f"%.{decimals}f"] * bvh.motion.shape[1])
    lines += [row % tuple(values) for values in bvh.motion]
    return "\n".join(lines) + "\n"


def matrix_to_euler(m, order):
    """(..., 3, 3) -> (..., 3) degrees about the axes of `order` (e.g. "ZXY": m = Rz·Rx·Ry), middle one in [-90, 90].

    At the middle angle's +-90 degrees (gimbal lock) only one combination of the outer two is defined; it goes
    into the first.
    """
    i, j, k = ("XYZ".index(axis) for axis in order)
    sign = 1.0 if (j - i) % 3 == 1 else -1.0  # +1 for a cyclic order (XYZ, YZX, ZXY)
    middle = np.arcsin(np.clip(sign * m[..., i, k], -1.0, 1.0))
    first = np.arctan2(-sign * m[..., j, k], m[..., k, k])
    last = np.arctan2(-sign * m[..., i, j], m[..., i, i])
    gimbal = np.abs(m[..., i, k]) > 1 - 1e-9
    first = np.where(gimbal, np.arctan2(sign * m[..., k, j], m[..., j, j]), first)
    last = np.where(gimbal, 0.0, last)
    return np.degrees(np.stack([first, middle, last], axis=-1))


def _tpose_directions():
    """Unit rest direction of each joint from its parent in the written skeleton.

    HumanML3D's raw offsets, except that the arms point sideways and the head up (HumanML3D's hang down and point
    forward): a T-pose, the rest pose retargeting tools expect of a BVH.
    """
    directions = skeleton.RAW_OFFSETS.copy()
    for side, x in (("left", 1.0), ("right", -1.0)):
        for joint in ("shoulder", "elbow", "wrist"):
            directions[J[f"{side}_{joint}"]] = [x, 0.0, 0.0]
    directions[J["head"]] = [0.0, 1.0, 0.0]
    return directions


TPOSE_DIRECTIONS = _tpose_directions()  # (22, 3)
# Joints with several children: joint -> {child: weight}. The joint turns to fit its children's directions best
# (weighted least squares), and their rest layout is measured from the motion. When the source moves the children
# against each other (CMU's LowerBack turns the spine base about the hips), the weights say who gives: the hips
# carry the legs and the foot contacts, so spine1 only sets the pelvis's turn about the hip line.
BRANCHES = {J["pelvis"]: {J["left_hip"]: 1.0, J["right_hip"]: 1.0, J["spine1"]: 1e-3},
            J["spine3"]: {J["neck"]: 1.0, J["left_collar"]: 1.0, J["right_collar"]: 1.0}}
PROCRUSTES_ROUNDS = 3  # rounds of (fit each frame, average the layout): converged to well under 0.1 mm
# Joints whose twist follows the bend plane of the joint below (knee, elbow): joint -> that plane's normal in the
# T-pose, i.e. the hinge axis (knees bend the shin backwards; elbows bring the hand forwards).
HINGE_AXES = {J["left_hip"]: (1.0, 0.0, 0.0), J["right_hip"]: (1.0, 0.0, 0.0),
              J["left_shoulder"]: (0.0, -1.0, 0.0), J["right_shoulder"]: (0.0, 1.0, 0.0)}
HINGE_FULL_TWIST_SINE = np.sin(np.radians(20.0))  # below this bend the plane is ill-defined: twist fades to none
# Euler order per joint: the bone's own (twist) axis in the middle, where the angle stays small, so elbows and knees
# bending past 90 degrees never reach gimbal lock. The root turns freely about Y, so Y goes first.
ROOT_EULER_ORDER = "YXZ"
EULER_ORDER_BY_BONE_AXIS = ("ZXY", "ZYX", "YZX")  # bone along X (arms), Y (legs, spine), Z (feet)
EXACT_TOLERANCE = 1e-4  # metres: with `exact`, joints the rotations miss by more than this get position channels
END_SITE_LENGTH = 0.5  # leaf bones' End Site, as a fraction of the leaf bone's length
CHILDREN = tuple(tuple(c for c, p in enumerate(skeleton.PARENTS) if p == j) for j in range(skeleton.NUM_JOINTS))


def rest_offsets(joints):
    """(22, 3) rest offsets for `joints` (T, 22, 3): mean bone lengths along `TPOSE_DIRECTIONS`, except for the
    children of `BRANCHES`, which keep their mean layout (a few Procrustes rounds), turned to fit the T-pose best."""
    parents = np.array(skeleton.PARENTS)
    lengths = np.linalg.norm(joints[:, 1:] - joints[:, parents[1:]], axis=-1).mean(0)  # (21,)
    offsets = TPOSE_DIRECTIONS * np.concatenate([[0.0], lengths])[:, None]
    for j, weights in BRANCHES.items():
        children = list(weights)
        tpose = offsets[children]
        posed = joints[:, children] - joints[:, j, None]  # (T, C, 3)
        rest = tpose
        for _ in range(PROCRUSTES_ROUNDS):
            fit = _best_rotation(rest, posed, list(weights.values()))  # (T, 3, 3)
            rest = np.einsum("tba,tcb->ca", fit, posed) / len(posed)  # mean posed layout, unrotated
        offsets[children] = rest @ _best_rotation(rest, tpose[None], np.ones(len(children)))[0].T
    return offsets


def _best_rotation(rest, posed, weights):
    """(T, 3, 3) rotations R minimising sum_c weights[c]·|R·rest[c] - posed[:, c]|^2 (Wahba's problem, by SVD).

    rest (C, 3) and posed (T, C, 3): exact when the children keep their layout.
    """
    u, _, vt = np.linalg.svd(np.einsum("tca,cb,c->tab", posed, rest, np.asarray(weights)))  # (T, 3, 3) each
    flip = np.ones((len(posed), 3))
    flip[:, 2] = np.sign(np.linalg.det(u @ vt))  # a rotation, never a reflection
    return (u * flip[:, None, :]) @ vt


def _swing(parent_rotation, offset, direction):
    """(T, 3, 3) world rotation: the parent's, then the shortest arc turning the bone `offset` onto `direction`."""
    arc = rotations.qbetween(np.einsum("tab,b->ta", parent_rotation, offset), direction)
    return rotations.quaternion_to_matrix(arc) @ parent_rotation


def _hinge_twist(rotation, hinge_rest, upper, lower):
    """(T, 3, 3) `rotation` twisted about the bone `upper` so the rest hinge axis lies along upper x lower.

    The twist fades out as the joint straightens (the bend plane is then noise), so it never flips.
    """
    axis = rotations.unit(upper)
    hinge = np.cross(upper, lower)
    bend_sine = np.linalg.norm(hinge, axis=-1) / (np.linalg.norm(upper, axis=-1) * np.linalg.norm(lower, axis=-1))
    hinge = hinge - (hinge * axis).sum(-1, keepdims=True) * axis
    current = rotation @ np.asarray(hinge_rest)
    current = current - (current * axis).sum(-1, keepdims=True) * axis
    angle = np.arctan2((axis * np.cross(current, hinge)).sum(-1), (current * hinge).sum(-1))
    weight = np.clip(bend_sine / HINGE_FULL_TWIST_SINE, 0.0, 1.0)
    return rotations.quaternion_to_matrix(rotations.axis_angle_to_quaternion(axis, weight * angle)) @ rotation


def joints_to_world_rotations(joints, offsets, exact=False):
    """World rotations (T, 22, 3, 3) that put the skeleton with rest `offsets` onto `joints` (T, 22, 3), and the
    (22,) bool mask of joints that need position channels (only with `exact`; else all False).

    Each bone aims from where the skeleton has placed its joint so far (not from the target joint), so a bone that
    cannot fit (its length or its siblings' layout changes over time) leaves a local error rather than turning the
    chain below it. With `exact`, a joint that misses by more than `EXACT_TOLERANCE` is placed on its target by a
    translation instead.
    """
    num_frames = len(joints)
    world = np.empty((num_frames, skeleton.NUM_JOINTS, 3, 3))
    placed = np.empty_like(joints)
    placed[:, 0] = joints[:, 0]
    translated = np.zeros(skeleton.NUM_JOINTS, dtype=bool)
    for j, children in enumerate(CHILDREN):
        parent_rotation = world[:, skeleton.PARENTS[j]] if j else np.broadcast_to(np.eye(3), (num_frames, 3, 3))
        if j in BRANCHES:
            weights = BRANCHES[j]
            world[:, j] = _best_rotation(offsets[list(weights)], joints[:, list(weights)] - placed[:, j, None],
                                         list(weights.values()))
        elif children:
            (child,) = children
            world[:, j] = _swing(parent_rotation, offsets[child], joints[:, child] - placed[:, j])
            if j in HINGE_AXES:
                (grandchild,) = CHILDREN[child]
                world[:, j] = _hinge_twist(world[:, j], HINGE_AXES[j], joints[:, child] - placed[:, j],
                                           joints[:, grandchild] - joints[:, child])
        else:
            world[:, j] = parent_rotation  # a leaf: nothing below it says how it turns
        for child in children:
            placed[:, child] = placed[:, j] + world[:, j] @ offsets[child]
            miss = np.linalg.norm(placed[:, child] - joints[:, child], axis=-1).max()
            if exact and miss > EXACT_TOLERANCE:
                translated[child] = True
                placed[:, child] = joints[:, child]
    return world, translated


def euler_orders():
    """(22,) Euler order of each written joint (`ROOT_EULER_ORDER`, else by the axis its bone runs along)."""
    bone_axes = [np.argmax(np.abs(TPOSE_DIRECTIONS[children[0] if children else j])) for j, children in
                 enumerate(CHILDREN)]
    return [ROOT_EULER_ORDER] + [EULER_ORDER_BY_BONE_AXIS[axis] for axis in bone_axes[1:]]


def _depth_first(joint=0):
    return [joint] + [j for child in CHILDREN[joint] for j in _depth_first(child)]


def joints_to_bvh(joints, fps, exact=False):
    """A Bvh of 22-joint positions (T, 22, 3) (metres, Y-up) at `fps`, on a T-pose skeleton with their bone lengths.

    Joint names are `skeleton.JOINT_NAMES`; the root has 6 channels, every other joint 3 (`euler_orders`); metres.
    Rotations alone reproduce the joints only where the motion keeps every bone's length and every branch's layout
    (true of the Daz-friendly CMU files, not of CMU's own skeleton: see `BRANCHES`). `exact` adds position
    channels to the joints that need them, so every joint is reproduced; many retargeting tools ignore them.
    """
    joints = check_joints(joints, min_frames=1)
    offsets = rest_offsets(joints)
    world, translated = joints_to_world_rotations(joints, offsets, exact)
    parents = np.array(skeleton.PARENTS)
    local = world.copy()
    local[:, 1:] = np.swapaxes(world[:, parents[1:]], -1, -2) @ world[:, 1:]
    orders = euler_orders()
    position = joints.copy()  # position channels: the root's in the world, the others' in their parent's frame
    position[:, 1:] = np.einsum("tjba,tjb->tja", world[:, parents[1:]], joints[:, 1:] - joints[:, parents[1:]])

    names, node_parents, node_offsets, channels, columns = [], [], [], [], []
    for j in _depth_first():
        p = skeleton.PARENTS[j]
        names.append(skeleton.JOINT_NAMES[j])
        node_parents.append(names.index(skeleton.JOINT_NAMES[p]) if p >= 0 else -1)
        node_offsets.append(offsets[j])
        moves = p < 0 or translated[j]
        rotation_channels = tuple(f"{axis}rotation" for axis in orders[j])
        channels.append((POSITION_CHANNEL_NAMES if moves else ()) + rotation_channels)
        euler = np.unwrap(matrix_to_euler(local[:, j], orders[j]), period=360.0, axis=0)  # continuous curves
        columns += [position[:, j], euler] if moves else [euler]
        if not CHILDREN[j]:
            names.append(skeleton.JOINT_NAMES[j] + END_SITE)
            node_parents.append(len(names) - 2)
            node_offsets.append(END_SITE_LENGTH * offsets[j])
            channels.append(())
    return Bvh(names=names, parents=np.array(node_parents), offsets=np.array(node_offsets), channels=channels,
               frame_time=1.0 / fps, motion=np.concatenate(columns, axis=1))


def write_bvh(path, joints, fps, exact=False):
    """Write 22-joint positions (T, 22, 3) (metres, Y-up) at `fps` as a BVH file (see `joints_to_bvh`)."""
    Path(path).write_text(format_bvh(joints_to_bvh(joints, fps, exact)))
