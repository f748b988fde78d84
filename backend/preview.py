"""Draw 22-joint motions as frame strips (PNG) with Pillow: previews for the README, the CLI and evaluation."""
import numpy as np

from . import skeleton

_LEFT, _RIGHT, _CENTRE = (40, 110, 220), (220, 60, 50), (70, 70, 70)


def _bone_colour(joint):
    name = skeleton.JOINT_NAMES[joint]
    return _LEFT if name.startswith("left_") else _RIGHT if name.startswith("right_") else _CENTRE


def _project(joints, azimuth_deg, elevation_deg):
    """Orthographic camera around the Y axis: (..., 3) Y-up metres -> (..., 2) image-plane metres (y up)."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    right = np.array([np.cos(az), 0.0, -np.sin(az)])
    forward = np.array([np.sin(az), 0.0, np.cos(az)])
    up = np.array([0.0, 1.0, 0.0])
    screen_up = np.cos(el) * up - np.sin(el) * forward  # tilt the camera down by `el`
    return np.stack([joints @ right, joints @ screen_up], axis=-1)


def draw_strip(rows, path, frames_per_row=8, panel=160, azimuth_deg=30.0, elevation_deg=15.0, labels=None):
    """Write a PNG with one row per motion in `rows` ((T,22,3) each), `frames_per_row` evenly spaced frames.

    Each panel follows its motion's root so walking clips stay in frame; all panels share one scale so sizes
    compare across rows.
    """
    from PIL import Image, ImageDraw

    rows = [np.asarray(r, dtype=np.float64) for r in rows]
    label_h = 14 if labels else 0
    image = Image.new("RGB", (frames_per_row * panel, len(rows) * (panel + label_h)), "white")
    draw = ImageDraw.Draw(image)
    height = max(float(np.ptp(r[..., 1])) for r in rows) or 1.8
    scale = 0.8 * panel / max(height, 1.0)
    for r, motion in enumerate(rows):
        top = r * (panel + label_h)
        if labels:
            draw.text((4, top), str(labels[r])[:120], fill="black")
        for c, t in enumerate(np.linspace(0, len(motion) - 1, frames_per_row).round().astype(int)):
            pose = motion[t] - motion[t, 0] * np.array([1.0, 0.0, 1.0])  # follow the root horizontally
            xy = _project(pose, azimuth_deg, elevation_deg)
            ox, oy = c * panel + panel / 2, top + label_h + panel * 0.92
            pts = [(ox + x * scale, oy - y * scale) for x, y in xy]
            draw.line([(c * panel + 8, oy), ((c + 1) * panel - 8, oy)], fill=(200, 200, 200), width=1)
            for j, p in enumerate(skeleton.PARENTS):
                if p >= 0:
                    draw.line([pts[p], pts[j]], fill=_bone_colour(j), width=3)
            head = pts[skeleton.JOINT_INDEX["head"]]
            draw.ellipse([head[0] - 5, head[1] - 5, head[0] + 5, head[1] + 5], outline=_CENTRE, width=2)
            draw.text((c * panel + 4, top + label_h + 2), f"f{t}", fill=(120, 120, 120))
    image.save(path)
    return path
