"""Frame pairs from real video (PyAV + mvtb-data) and from PyBullet renders (extra `data-motion`)."""

import numpy as np
import pytest
import torch

from unitok.data.items import FramePairItem
from unitok.data.motion import (bundled_video_path, bundled_video_pairs, mocap_frame_pairs, render_mocap_clip,
                                render_robot_clip, robot_frame_pairs, validate_pair, video_frame_pairs)


@pytest.fixture(scope="module")
def av():
    return pytest.importorskip("av")


@pytest.fixture(scope="module")
def traffic(av):
    pytest.importorskip("mvtbdata")
    return bundled_video_path()


@pytest.fixture(scope="module")
def bullet():
    pytest.importorskip("pybullet")


def _write_video(av, path, frames):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.height, stream.width, stream.pix_fmt = *frames[0].shape[:2], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def _mean_change(pairs):
    return np.mean([(p.target.float() - p.first.float()).abs().mean().item() for p in pairs])


def test_bundled_video_pairs_shape_dtype_delta(traffic):
    pairs = bundled_video_pairs(delta=3, size=64, max_pairs=6, stride=5)
    assert len(pairs) == 6 and len({p.name for p in pairs}) == 6
    for pair in pairs:
        assert isinstance(pair, FramePairItem) and pair.delta == 3 and "mvtb-data" in pair.source
        assert pair.first.shape == pair.target.shape == (3, 64, 64)
        assert pair.first.dtype == pair.target.dtype == torch.uint8
        assert pair.first.float().std() > 20  # real image content, not a blank frame
        assert validate_pair(pair) is None


def test_pairs_come_from_decoded_video_in_order(traffic):
    near = video_frame_pairs(traffic, delta=1, size=64, max_pairs=12)
    far = video_frame_pairs(traffic, delta=6, size=64, max_pairs=12)
    for i in range(11):  # with stride 1, pair i's target is pair i+1's first frame
        assert torch.equal(near[i].target, near[i + 1].first)
    assert torch.equal(far[0].target, near[5].target)
    assert all((p.target != p.first).any() for p in near)  # consecutive frames differ: the scene moves
    assert _mean_change(far) > 1.5 * _mean_change(near)


def test_centre_crop_and_too_few_frames(av, tmp_path):
    frames = []
    for i in range(5):  # red side bands, blue centre, a white square moving right
        frame = np.zeros((96, 160, 3), np.uint8)
        frame[:, :32] = frame[:, 128:] = [255, 0, 0]
        frame[:, 32:128] = [0, 0, 255]
        frame[40:56, 40 + 10 * i:56 + 10 * i] = 255
        frames.append(frame)
    _write_video(av, tmp_path / "clip.mp4", frames)
    pairs = video_frame_pairs(tmp_path / "clip.mp4", delta=1, size=48)
    assert len(pairs) == 4 and pairs[0].first.shape == (3, 48, 48)
    red, _, blue = pairs[0].first.float().mean((1, 2)).tolist()
    assert blue > 200 and red < 40  # the side bands were cropped away
    with pytest.raises(ValueError, match=r"clip\.mp4.*too few.*delta=5"):
        video_frame_pairs(tmp_path / "clip.mp4", delta=5)


def test_missing_and_corrupt_video(av, tmp_path):
    with pytest.raises(ValueError, match="not found.*nothing.mp4"):
        video_frame_pairs(tmp_path / "nothing.mp4")
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="noise.mp4"):
        video_frame_pairs(tmp_path / "noise.mp4")


def test_truncated_real_video(traffic, tmp_path):
    (tmp_path / "cut.mp4").write_bytes(traffic.read_bytes()[:50_000])
    with pytest.raises(ValueError, match="cut.mp4"):
        video_frame_pairs(tmp_path / "cut.mp4")


def test_validate_pair():
    frame = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8)
    assert "static" in validate_pair(FramePairItem("s", frame, frame.clone(), 3))
    assert validate_pair(FramePairItem("m", frame, 255 - frame, 3)) is None
    assert "uint8" in validate_pair(FramePairItem("f", frame.float(), frame.float(), 3))
    assert "(3, H, W)" in validate_pair(FramePairItem("b", frame, frame[:, :8], 3))


def test_robot_renders_are_deterministic(bullet):
    clip = render_robot_clip("panda", num_frames=5, size=48, seed=3)
    assert clip.shape == (5, 3, 48, 48) and clip.dtype == torch.uint8
    assert torch.equal(clip, render_robot_clip("panda", num_frames=5, size=48, seed=3))
    assert not torch.equal(clip, render_robot_clip("panda", num_frames=5, size=48, seed=4))
    assert all((clip[i] != clip[i + 1]).any() for i in range(4))  # the arm moves
    pairs = robot_frame_pairs("kuka", num_frames=6, delta=2, size=48)
    assert len(pairs) == 4 and all(p.delta == 2 and validate_pair(p) is None for p in pairs)
    with pytest.raises(ValueError, match="too few"):
        robot_frame_pairs("panda", num_frames=3, delta=3, size=32)


def test_mocap_renders(bullet):
    clip = render_mocap_clip("walk", num_frames=6, size=48)
    assert clip.shape == (6, 3, 48, 48)
    assert torch.equal(clip, render_mocap_clip("walk", num_frames=6, size=48))
    assert all((clip[i] != clip[i + 1]).any() for i in range(5))
    pairs = mocap_frame_pairs("run", num_frames=8, delta=3, size=48, stride=2)
    assert [p.name for p in pairs] == [f"humanoid_run_s0_t{i:04d}_d3" for i in (0, 2, 4)]
    with pytest.raises(ValueError, match="unknown mocap clip"):
        render_mocap_clip("moonwalk")
