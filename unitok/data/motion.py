"""Frame pairs (frame t, frame t+Δ) for latent-motion tokenizers such as Moto, from real video and rendered robots.

Moto's tokenizer encodes a (condition = frame t, target = frame t+Δ) pair resized bicubically to 224×224, with
Δ = 3 frames on Open-X-Embodiment and 5 on CALVIN; so these are the defaults for video. Robot renders default to
128² to stay fast on a CPU (pass size=224 for Moto's resolution: about 24 fps instead of 40–230).

Sources (all installed from PyPI, nothing is downloaded at run time):
- any video file PyAV can decode (`video_frame_pairs`), e.g. the real traffic clip of `mvtb-data`
  (`bundled_video_pairs`: `traffic_sequence.mp4`, h264 704×576, 30 fps, 350 frames; MIT licence per the
  package metadata of Peter Corke's Machine Vision Toolbox data; the media come from his book's examples);
- a Franka Panda or KUKA iiwa arm moving its joints along a smooth seeded trajectory (`robot_frame_pairs`), and
  a DeepMimic humanoid replaying real motion capture kinematically (`mocap_frame_pairs`), both rendered by
  PyBullet's CPU TinyRenderer in DIRECT mode (no GL). pybullet is zlib-licensed; the Panda URDF is Apache-2.0
  (its LICENSE.txt in pybullet_data); the mocap clips come from DeepMimic (MIT per its repository; pybullet_data
  ships no separate notice for them).
"""

import contextlib
import ctypes
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..evaluation.extras import require
from .items import FramePairItem

MOTO_SIZE = 224
MOTO_DELTA = 3
RENDER_SIZE = 128
ARMS = {  # URDF, resting joint angles of the 7 arm joints
    "panda": ("franka_panda/panda.urdf", [0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.8]),
    "kuka": ("kuka_iiwa/model.urdf", [0.0, 0.5, 0.0, -1.2, 0.0, 0.8, 0.0]),
}
# DeepMimic frame layout after the duration: root position (3), root quaternion (4), then per joint a quaternion
# (w, x, y, z) or one angle, in this order; the numbers are the joint indices of pybullet_data's humanoid.urdf.
MOCAP_JOINTS = [(1, 4), (2, 4), (9, 4), (10, 1), (11, 4), (3, 4), (4, 1), (12, 4), (13, 1), (14, 4), (6, 4), (7, 1)]


def _square(image: Image.Image, size: int) -> torch.Tensor:
    """Centre square crop + antialiased bicubic resize (PIL widens its filter when downscaling) → uint8 (3, s, s)."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.convert("RGB").resize((size, size), Image.BICUBIC, box=(left, top, left + side, top + side))
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).contiguous()


def _pairs(frames, delta, stride, max_pairs, prefix, source, start=0, what=None) -> list[FramePairItem]:
    if delta < 1 or stride < 1:
        raise ValueError(f"delta and stride must be >= 1, got delta={delta}, stride={stride}.")
    if len(frames) <= start + delta:
        raise ValueError(f"{what or source}: {len(frames)} frames are too few for delta={delta} (start={start}).")
    starts = list(range(start, len(frames) - delta, stride))[:max_pairs]
    return [FramePairItem(f"{prefix}_t{i:04d}_d{delta}", frames[i], frames[i + delta], delta, source) for i in starts]


def video_frame_pairs(path, delta: int = MOTO_DELTA, size: int = MOTO_SIZE, max_pairs: int | None = None,
                      stride: int = 1, start: int = 0, source: str | None = None) -> list[FramePairItem]:
    """Pairs (frame i, frame i+delta) for i = start, start+stride, … of a real video decoded with PyAV.

    Frames are centre-cropped to a square and resized to `size`² (antialiased bicubic), RGB uint8 `(3, size, size)`.
    Only the frames needed for `max_pairs` pairs are decoded. A missing, corrupt or undecodable file, or one with
    too few frames for `delta`, raises ValueError naming the file.
    """
    av = require("av", "data-motion", "av")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"video file not found: {path}")
    needed = None if max_pairs is None else start + (max_pairs - 1) * stride + delta + 1
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path} has no video stream.")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                frames.append(_square(frame.to_image(), size))
                if needed is not None and len(frames) >= needed:
                    break
    except (av.error.FFmpegError, OSError) as error:
        raise ValueError(f"cannot decode video {path}: {error}") from error
    return _pairs(frames, delta, stride, max_pairs, path.stem, source or f"video:{path.name}", start, str(path))


def bundled_video_path() -> Path:
    """`traffic_sequence.mp4` from the `mvtb-data` wheel (real street traffic, MIT)."""
    mvtbdata = require("mvtbdata", "data-motion", "mvtb-data")
    return Path(mvtbdata.__file__).parent / "images" / "traffic_sequence.mp4"


def bundled_video_pairs(delta: int = MOTO_DELTA, size: int = MOTO_SIZE, max_pairs: int | None = 16,
                        stride: int = 10, start: int = 0) -> list[FramePairItem]:
    """Frame pairs of mvtb-data's real traffic video (350 frames at 30 fps)."""
    return video_frame_pairs(bundled_video_path(), delta, size, max_pairs, stride, start,
                             source="mvtb-data traffic_sequence.mp4 (MIT)")


@contextlib.contextmanager
def _quiet():
    """Silence C-level stdout (pybullet prints URDF warnings with printf)."""
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        ctypes.CDLL(None).fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _pybullet():
    with _quiet():
        pybullet = require("pybullet", "data-motion", "pybullet")
        data = require("pybullet_data", "data-motion", "pybullet")
    return pybullet, data.getDataPath()


def _xyzw(q):
    """DeepMimic stores quaternions as (w, x, y, z); pybullet wants (x, y, z, w)."""
    return [q[1], q[2], q[3], q[0]]


def _render(p, client, view, size) -> torch.Tensor:
    projection = p.computeProjectionMatrixFOV(50, 1.0, 0.05, 20.0)
    _, _, rgba, _, _ = p.getCameraImage(size, size, view, projection, renderer=p.ER_TINY_RENDERER,
                                        physicsClientId=client)
    return torch.from_numpy(np.asarray(rgba, dtype=np.uint8).reshape(size, size, 4)[..., :3].copy()).permute(2, 0, 1)


def render_robot_clip(robot: str = "panda", num_frames: int = 32, size: int = RENDER_SIZE, seed: int = 0,
                      fps: float = 10.0) -> torch.Tensor:
    """`(num_frames, 3, size, size)` uint8: an arm whose 7 joints follow seeded sinusoids around a resting pose,
    with a few seeded objects on the floor, seen by a fixed (seeded) camera. Deterministic for a seed."""
    if robot not in ARMS:
        raise ValueError(f"unknown robot {robot!r}; choose from {sorted(ARMS)}.")
    p, data = _pybullet()
    rng = np.random.default_rng(seed)
    urdf, rest = ARMS[robot]
    amplitude, frequency, phase = rng.uniform(0.25, 0.6, 7), rng.uniform(0.15, 0.4, 7), rng.uniform(0, 2 * np.pi, 7)
    client = p.connect(p.DIRECT)
    try:
        with _quiet():
            p.loadURDF(f"{data}/plane.urdf", physicsClientId=client)
            arm = p.loadURDF(f"{data}/{urdf}", useFixedBase=True, physicsClientId=client)
            for k in range(3):
                angle, radius = rng.uniform(0, 2 * np.pi), rng.uniform(0.4, 0.6)
                cube = p.loadURDF(f"{data}/cube_small.urdf", [radius * math.cos(angle), radius * math.sin(angle), 0.05],
                                  globalScaling=2.0, physicsClientId=client)
                p.changeVisualShape(cube, -1, rgbaColor=[*np.eye(3)[k], 1.0], physicsClientId=client)
        joints = [j for j in range(p.getNumJoints(arm, physicsClientId=client))
                  if p.getJointInfo(arm, j, physicsClientId=client)[2] == p.JOINT_REVOLUTE][:7]
        view = p.computeViewMatrixFromYawPitchRoll([0.2, 0.0, 0.4], 1.4, 45 + rng.uniform(-20, 20),
                                                   -25 + rng.uniform(-5, 5), 0, 2)
        frames = []
        for t in np.arange(num_frames) / fps:
            angles = np.asarray(rest) + amplitude * np.sin(2 * np.pi * frequency * t + phase)
            for joint, angle in zip(joints, angles):
                p.resetJointState(arm, joint, float(angle), physicsClientId=client)
            frames.append(_render(p, client, view, size))
    finally:
        p.disconnect(client)
    return torch.stack(frames)


def robot_frame_pairs(robot: str = "panda", num_frames: int = 32, delta: int = MOTO_DELTA, size: int = RENDER_SIZE,
                      seed: int = 0, stride: int = 1, max_pairs: int | None = None) -> list[FramePairItem]:
    """Frame pairs of `render_robot_clip` (10 fps)."""
    frames = render_robot_clip(robot, num_frames, size, seed)
    return _pairs(frames, delta, stride, max_pairs, f"{robot}_s{seed}", f"pybullet:{robot} (TinyRenderer)")


def mocap_clips() -> list[str]:
    """Names of the DeepMimic humanoid clips in pybullet_data (walk, run, jump, cartwheel, …)."""
    _, data = _pybullet()
    return sorted(f.name[len("humanoid3d_"):-4] for f in Path(data, "data", "motions").glob("humanoid3d_*.txt"))


def render_mocap_clip(clip: str = "walk", num_frames: int = 32, size: int = RENDER_SIZE, seed: int = 0,
                      fps: float = 30.0) -> torch.Tensor:
    """`(frames, 3, size, size)` uint8: the DeepMimic humanoid posed kinematically from a real motion-capture clip
    (y-up), sampled at about `fps`, seen by a fixed camera at a seeded azimuth. At most the clip's length."""
    p, data = _pybullet()
    path = Path(data, "data", "motions", f"humanoid3d_{clip}.txt")
    if not path.is_file():
        raise ValueError(f"unknown mocap clip {clip!r}; choose from {mocap_clips()}.")
    motion = json.loads(path.read_text())["Frames"]
    step = max(1, round(1.0 / (motion[0][0] * fps)))
    motion = motion[::step][:num_frames]
    rng = np.random.default_rng(seed)
    client = p.connect(p.DIRECT)
    try:
        with _quiet():
            p.loadURDF(f"{data}/plane.urdf", [0, 0, 0], p.getQuaternionFromEuler([-math.pi / 2, 0, 0]),
                       physicsClientId=client)
            body = p.loadURDF(f"{data}/humanoid/humanoid.urdf", [0, 0.9, 0], globalScaling=0.25,
                              physicsClientId=client)
        centre = np.mean([frame[1:4] for frame in motion], axis=0)
        azimuth = rng.uniform(0, 2 * np.pi)
        eye = centre + np.array([2.6 * math.sin(azimuth), 0.4, 2.6 * math.cos(azimuth)])
        view = p.computeViewMatrix(eye.tolist(), [centre[0], 0.8, centre[2]], [0, 1, 0])
        frames = []
        for frame in motion:
            p.resetBasePositionAndOrientation(body, frame[1:4], _xyzw(frame[4:8]), physicsClientId=client)
            offset = 8
            for joint, width in MOCAP_JOINTS:
                value = frame[offset:offset + width]
                p.resetJointStateMultiDof(body, joint, _xyzw(value) if width == 4 else value, physicsClientId=client)
                offset += width
            frames.append(_render(p, client, view, size))
    finally:
        p.disconnect(client)
    return torch.stack(frames)


def mocap_frame_pairs(clip: str = "walk", num_frames: int = 32, delta: int = MOTO_DELTA, size: int = RENDER_SIZE,
                      seed: int = 0, stride: int = 1, max_pairs: int | None = None) -> list[FramePairItem]:
    """Frame pairs of `render_mocap_clip` (30 fps)."""
    frames = render_mocap_clip(clip, num_frames, size, seed)
    return _pairs(frames, delta, stride, max_pairs, f"humanoid_{clip}_s{seed}",
                  f"pybullet:deepmimic humanoid3d_{clip} mocap (TinyRenderer)")


def validate_pair(item: FramePairItem, min_change: float = 0.5) -> str | None:
    """Why a pair is unusable (wrong shape/dtype, or static: mean |target − first| below `min_change` grey levels),
    or None. The harness skips flagged pairs with a warning."""
    first, target = item.first, item.target
    if first.dtype != torch.uint8 or target.dtype != torch.uint8:
        return f"frames must be uint8, got {first.dtype} and {target.dtype}"
    if first.ndim != 3 or first.shape[0] != 3 or first.shape != target.shape:
        return f"frames must both be (3, H, W), got {tuple(first.shape)} and {tuple(target.shape)}"
    if item.delta < 1:
        return f"delta must be >= 1, got {item.delta}"
    change = (first.float() - target.float()).abs().mean().item()
    if change < min_change:
        return f"static pair: mean |target - first| = {change:.3f} < {min_change} grey levels"
    return None


__all__ = ["MOTO_DELTA", "MOTO_SIZE", "bundled_video_pairs", "bundled_video_path", "mocap_clips", "mocap_frame_pairs",
           "render_mocap_clip", "render_robot_clip", "robot_frame_pairs", "validate_pair", "video_frame_pairs"]
