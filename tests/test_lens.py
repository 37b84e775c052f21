"""Head-camera lenses (kinpoly.egocentric.lens): projection models against OpenCV's, calibration
files, and a fisheye video read as the flow encoder's pinhole camera would have seen it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinpoly import rotations as rot
from kinpoly.egocentric.lens import Lens, Rectifier, load_lens, pinhole_rays
from kinpoly.egocentric.take import EgoDataError
from kinpoly.egocentric.trajectory import _M
from kinpoly.egocentric.video import import_video

ADT = Path(__file__).resolve().parents[2] / "shared/data/aria_adt_sample"
# Project Aria's RGB camera (FisheyeRadTanThinPrism: f cx cy k0-k5 p0 p1 s0-s3) for 1408 x 1408
# frames: the factory calibration of the ADT sample recording (device_calibration.json there)
ARIA_RGB = [610.941, 715.115, 716.715, 0.406036, -0.489948, 0.174565, 1.132984, -1.701635, 0.651156,
            6.2115e-4, 1.9322e-5, -1.4855e-5, 2.6012e-4, -6.5821e-4, 3.7614e-5]


def _aria(size=(1408, 1408)) -> Lens:
    p = ARIA_RGB
    return Lens("fisheye", p[0], p[0], p[1], p[2], tuple(p[3:9]), (p[9], p[10]), tuple(p[11:15]), size)


def _rays(n: int, max_deg: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    theta, phi = np.radians(rng.uniform(0, max_deg, n)), rng.uniform(-np.pi, np.pi, n)
    return np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], 1)


def test_pinhole_and_fisheye_models_project_as_opencv_does():
    """OpenCV's pinhole (k1 k2 p1 p2 k3) and fisheye (Kannala-Brandt k1-k4) models are the
    reference: a calibration a user made with OpenCV must mean what it meant there."""
    import cv2

    K = np.array([[300.0, 0, 322.5], [0, 310.0, 236.0], [0, 0, 1]])
    rays = _rays(200, 40)
    dist = np.array([-0.28, 0.09, 1.2e-3, -8e-4, -0.012])
    want = cv2.projectPoints(rays[:, None], np.zeros(3), np.zeros(3), K, dist)[0][:, 0]
    lens = Lens("pinhole", 300.0, 310.0, 322.5, 236.0, (dist[0], dist[1], dist[4]), (dist[3], dist[2]))
    np.testing.assert_allclose(lens.project(rays), want, atol=1e-6)
    assert load_lens_from({"model": "pinhole", "fx": 300.0, "fy": 310.0, "cx": 322.5, "cy": 236.0,
                           "distortion": dist.tolist()}).project(rays) == pytest.approx(want, abs=1e-6)

    k = np.array([0.12, -0.03, 0.004, -0.0005])
    rays = _rays(200, 85)
    want = cv2.fisheye.projectPoints(rays[:, None], np.zeros(3), np.zeros(3), K, k)[0][:, 0]
    lens = Lens("fisheye", 300.0, 310.0, 322.5, 236.0, tuple(k))
    np.testing.assert_allclose(lens.project(rays), want, atol=1e-6)


_cache: dict = {}


def load_lens_from(data: dict, suffix: str = ".json") -> Lens:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"lens{suffix}"
        path.write_text(json.dumps(data))
        return load_lens(path)


@settings(max_examples=30, deadline=None)
@given(st.floats(0.5, 3.0), st.integers(0, 10_000))
def test_unproject_inverts_project_within_the_frame(scale, seed):
    """Every direction the Aria lens sees inside its frame comes back from its pixel, at any
    frame size the calibration is scaled to."""
    size = (round(1408 * scale / 2) * 2,) * 2
    lens = _aria().fit(*size)
    rays = _rays(300, 75, seed)
    px = lens.project(rays)
    inside = np.isfinite(px).all(1) & (px >= 0).all(1) & (px <= size[0] - 1).all(1)
    assert inside.sum() > 100
    np.testing.assert_allclose(lens.unproject(px[inside]), rays[inside], atol=1e-7)


def test_a_scaled_calibration_sees_the_same_directions():
    """Frames resized from the calibrated size see each direction at the resized pixel (pixel
    centres at integers), as projectaria_tools scales its calibrations."""
    rays = _rays(100, 50)
    full, half = _aria().project(rays), _aria().fit(704, 704).project(rays)
    np.testing.assert_allclose(half, (full + 0.5) / 2 - 0.5, atol=1e-9)
    with pytest.raises(EgoDataError, match="another shape"):
        _aria().fit(1920, 1080)


def test_calibration_files(tmp_path):
    """The files users hold: Project Aria's device calibration (VRS / MPS online calibration,
    with or without the image size), projectaria_tools' per-camera export, a plain YAML, and
    fisheye:DEGREES; each wrong one a one-line error."""
    aria = {"CameraCalibrations": [
        {"Label": "camera-slam-left", "Projection": {"Name": "FisheyeRadTanThinPrism", "Params": [241.1, 316.6, 237.0] + [0.0] * 12}},
        {"Label": "camera-rgb", "Projection": {"Name": "FisheyeRadTanThinPrism", "Params": ARIA_RGB}}]}
    (tmp_path / "device.json").write_text(json.dumps(aria))
    lens = load_lens(tmp_path / "device.json")
    assert lens.size is None and lens.fx == ARIA_RGB[0]
    # no frame size in the file: for frames twice its principal point, here 1408 x 1408; smaller
    # frames are scaled to the 1-2% that the principal point is off their centre
    assert lens.fit(1408, 1408).fx == ARIA_RGB[0]
    assert lens.fit(704, 704).fx == pytest.approx(ARIA_RGB[0] / 2, rel=0.03)
    slam = load_lens(f"{tmp_path / 'device.json'}#camera-slam-left")
    assert slam.fx == 241.1 and slam.fit(640, 480).cx == pytest.approx(316.6)
    online = dict(aria, ImageSizes=[[640, 480], [1408, 1408]], tracking_timestamp_us=1)
    (tmp_path / "online_calibration.jsonl").write_text(json.dumps(online) + "\n" + json.dumps(online) + "\n")
    assert load_lens(tmp_path / "online_calibration.jsonl").size == (1408, 1408)
    export = {"camera-rgb": {"model": "CameraModelType.FISHEYE624", "projection_params": ARIA_RGB,
                             "image_size": [1408, 1408]}}
    (tmp_path / "export.json").write_text(json.dumps(export))
    assert load_lens(tmp_path / "export.json") == _aria().__class__(**{**_aria().__dict__, "source": str(tmp_path / "export.json")})
    (tmp_path / "lens.yaml").write_text("model: opencv_fisheye\nwidth: 640\nheight: 480\nfx: 280\ncx: 320\ncy: 240\n"
                                        "distortion: [0.1, -0.02, 0.0, 0.0]\n")
    plain = load_lens(tmp_path / "lens.yaml")
    assert plain.model == "fisheye" and plain.fy == 280 and plain.fit(1280, 960).fx == 560
    eq = load_lens("fisheye:120").fit(200, 100)  # 120 degrees across the shorter side
    assert eq.project(np.array([[np.sin(np.radians(60)), 0, np.cos(np.radians(60))]]))[0, 0] == pytest.approx(99.5 + 50)
    if (ADT / "device_calibration.json").is_file():  # the real file, as the ADT sample holds it
        real = load_lens(ADT / "device_calibration.json")
        assert real.size == (1408, 1408) and real.fx == pytest.approx(ARIA_RGB[0], abs=1e-3)

    (tmp_path / "bad_model.yaml").write_text("model: orthographic\nfx: 1\ncx: 0\ncy: 0\n")
    (tmp_path / "bad_params.json").write_text(json.dumps({"CameraCalibrations": [
        {"Label": "camera-rgb", "Projection": {"Name": "Spherical", "Params": [1, 2, 3]}}]}))
    (tmp_path / "no_fx.yaml").write_text("model: fisheye\ncx: 0\ncy: 0\n")
    (tmp_path / "broken.json").write_text("{not json")
    for spec, message in ((tmp_path / "missing.json", "no such lens calibration file"),
                          (tmp_path / "bad_model.yaml", "model 'orthographic'"),
                          (tmp_path / "bad_params.json", "'Spherical' with 3 parameters"),
                          (f"{tmp_path / 'device.json'}#camera-et-left", "no camera 'camera-et-left'"),
                          (tmp_path / "no_fx.yaml", "incomplete or malformed calibration"),
                          (tmp_path / "broken.json", "not a readable calibration file"),
                          ("fisheye:wide", "expected fisheye:DEGREES")):
        with pytest.raises(EgoDataError, match=message):
            load_lens(spec)
    with pytest.raises(EgoDataError, match="principal point"):
        lens.fit(640, 1408)


def _panorama(seed: int = 0):
    """A blurred random texture over all directions (equirectangular, 1440 x 720: 0.25 degrees per
    pixel) and what a camera turned ``R_wc`` (OpenCV axes to a Z-up world) sees along ``rays``."""
    import cv2

    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.integers(0, 255, (720, 1440, 3), dtype=np.uint8), (0, 0), 3.0)

    def look(R_wc: np.ndarray, rays: np.ndarray) -> np.ndarray:
        d = rays.reshape(-1, 3) @ R_wc.T
        az, el = np.arctan2(d[:, 1], d[:, 0]), np.arcsin(np.clip(d[:, 2] / np.linalg.norm(d, axis=1), -1, 1))
        mx = ((np.pi - az) / (2 * np.pi) * 1440).astype(np.float32).reshape(rays.shape[:2])
        my = ((np.pi / 2 - el) / np.pi * 720).astype(np.float32).reshape(rays.shape[:2])
        img = cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        return np.where(np.isfinite(rays).all(-1, keepdims=True), img, 0).astype(np.uint8)

    return look


def _fisheye_rays(lens: Lens, size: int, circle_deg: float = 62.0) -> np.ndarray:
    """Each pixel's direction through ``lens``; NaN outside its image circle (as Aria's frames
    are dark there)."""
    u, v = np.meshgrid(np.arange(size, dtype=float), np.arange(size, dtype=float))
    rays = lens.unproject(np.stack([u.ravel(), v.ravel()], 1)).reshape(size, size, 3)
    rays[np.degrees(np.arccos(np.clip(rays[..., 2], -1, 1))) > circle_deg] = np.nan
    return rays


def test_a_rectified_fisheye_frame_is_the_encoders_pinhole_view():
    """The same view through Aria's lens, resampled, is the encoder's 100-degree pinhole view of
    it (to the blur of resampling); read as stored it is not."""
    from kinpoly.egocentric.video import encoder_view

    look = _panorama()
    R = rot.yaw_matrix(np.array([0.4]))[0] @ _M["opencv"].T
    lens = _aria().fit(384, 384)
    fisheye = look(R, _fisheye_rays(lens, 384))
    want = look(R, pinhole_rays(128, 128, 100.0)).astype(float)
    rect = Rectifier(lens, (384, 384), 128, 128, 100.0)
    assert rect.fovy == 100.0 and 105 < rect.coverage < 115  # Aria's RGB camera: about 110 degrees
    err = np.abs(rect(fisheye) - want).mean()
    assert err < 0.3 * np.abs(encoder_view(fisheye, 128, 128) - want).mean()
    assert err < 6.0
    narrow = Rectifier(load_lens("fisheye:80"), (384, 384), 128, 128, 100.0)
    assert narrow.fovy == pytest.approx(80.0, abs=0.5)  # no wider than the frames cover


def _turning_fisheye(tmp_path, T: int = 90):
    """A head yawing and pitching inside the panorama, filmed by a 100-degree pinhole (``pin.mp4``)
    and by Aria's lens (``fish.mp4``, 256 x 256, dark outside its image circle), with
    ``traj.npy`` (DROID-SLAM layout)."""
    import imageio.v2 as imageio

    look = _panorama(1)
    t = np.arange(T) / 30.0
    yaw, pitch = 0.35 * np.sin(2 * np.pi * 0.7 * t), 0.12 * np.sin(2 * np.pi * 0.45 * t + 1.0)
    R = rot.yaw_matrix(yaw) @ rot.quat_to_matrix(np.stack([np.cos(pitch / 2), 0 * t, np.sin(pitch / 2), 0 * t], 1))
    Rc = R @ _M["opencv"].T
    q = rot.matrix_to_quat(Rc)
    np.save(tmp_path / "traj.npy", np.concatenate([np.stack([0.3 * t, 0 * t, 1.6 + 0 * t], 1), q[:, [1, 2, 3, 0]]], 1))
    lens = _aria().fit(256, 256)
    pin, fish = pinhole_rays(128, 128, 100.0), _fisheye_rays(lens, 256)
    for name, rays in (("pin", pin), ("fish", fish)):
        imageio.mimwrite(tmp_path / f"{name}.mp4", [look(r, rays) for r in Rc], fps=30, macro_block_size=1,
                         quality=9, ffmpeg_log_level="error")
    return lens


def test_a_fisheye_video_is_read_through_its_lens(tmp_path, caplog):
    """`--video-lens`: the flow encoder reads a fisheye video as through its own pinhole camera,
    so its image features are the pinhole video's; without it they are not, and dark corners
    bring a warning that names the option."""
    lens = _turning_fisheye(tmp_path)
    pin = import_video(tmp_path / "pin.mp4", tmp_path / "traj.npy", scale=1.0, video_rotation=0).take
    norm = np.linalg.norm(pin.image_features, axis=1).mean()

    def distance(take):
        return np.linalg.norm(take.image_features - pin.image_features, axis=1).mean() / norm

    with caplog.at_level("WARNING", logger="kinpoly.egocentric.video"):
        plain = import_video(tmp_path / "fish.mp4", tmp_path / "traj.npy", scale=1.0, video_rotation=0)
    assert "--video-lens" in caplog.text and "video_lens" not in plain.report
    caplog.clear()
    (tmp_path / "lens.yaml").write_text(f"model: fisheye624\nwidth: 256\nheight: 256\nfx: {lens.fx}\ncx: {lens.cx}\n"
                                        f"cy: {lens.cy}\ndistortion: {list(lens.radial)}\n")
    with caplog.at_level("WARNING", logger="kinpoly.egocentric.video"):
        through = import_video(tmp_path / "fish.mp4", tmp_path / "traj.npy", scale=1.0, video_rotation=0,
                               video_lens=tmp_path / "lens.yaml")
    assert "--video-lens" not in caplog.text
    assert through.report["video_lens"]["view_fovy"] == 100.0 and through.video.lens is not None
    assert distance(through.take) < 0.2 < 0.4 < distance(plain.take), (distance(through.take), distance(plain.take))
    with pytest.raises(EgoDataError, match="not both"):
        import_video(tmp_path / "fish.mp4", tmp_path / "traj.npy", scale=1.0, video_lens="fisheye:110",
                     video_fovy=110.0)


def test_a_stream_reads_its_fisheye_video_through_the_lens(tmp_path):
    """`kinpoly stream --video FILE --video-lens ...`: the frames the stream reads are the
    encoder's pinhole view, as `import-video` makes them; a folder of frames streams too."""
    from kinpoly.egocentric.video import read_video
    from kinpoly.policy.commands import _video_frames

    lens = _turning_fisheye(tmp_path, T=30)
    pin = np.stack(read_video(tmp_path / "pin.mp4", 128, 128).frames).astype(float)
    seen = np.stack(list(_video_frames(str(tmp_path / "fish.mp4"), 0, lens))).astype(float)
    plain = np.stack(list(_video_frames(str(tmp_path / "fish.mp4")))).astype(float)  # the fisheye as it is
    assert seen.shape == pin.shape == plain.shape == (30, 128, 128, 3)
    assert np.abs(seen - pin).mean() < 0.4 * np.abs(plain - pin).mean()
    import imageio.v2 as imageio

    (tmp_path / "frames").mkdir()
    for i, f in enumerate(imageio.mimread(tmp_path / "fish.mp4")):
        imageio.imwrite(tmp_path / "frames" / f"f_{1_000_000_000 + i * 33_333_333}.png", f)
    from_folder = np.stack(list(_video_frames(str(tmp_path / "frames"), 0, lens))).astype(float)
    assert np.abs(from_folder - seen).mean() < 1.0


def test_lens_mistakes_on_the_command_line(tmp_path):
    """A missing calibration, a lens and a field of view together, --video-lens without a
    video, a calibration for frames of another shape: one-line errors, nothing written."""
    from click.testing import CliRunner

    from kinpoly.cli import main

    def run(*args):
        return CliRunner().invoke(main, [str(a) for a in args])

    _turning_fisheye(tmp_path, T=20)
    (tmp_path / "wide.yaml").write_text("model: fisheye\nwidth: 640\nheight: 480\nfx: 200\ncx: 320\ncy: 240\n")
    common = ["ego", "import-video", tmp_path / "fish.mp4", "--head-poses", tmp_path / "traj.npy", "--scale", "1"]
    for extra, message in ((["--video-lens", tmp_path / "none.json"], "no such lens calibration file"),
                           (["--video-lens", "fisheye:110", "--video-fovy", "110"], "not both"),
                           (["--video-lens", tmp_path / "wide.yaml"], "the calibration is for 640x480 frames")):
        res = run(*common, "--out", tmp_path / "out", *extra)
        assert res.exit_code == 1 and message in res.output and res.output.startswith("Error:"), res.output
        assert not (tmp_path / "out").exists()
    res = run("estimate", "--head-poses", tmp_path / "traj.npy", "--video-lens", "fisheye:150", "--out", tmp_path / "e")
    assert res.exit_code == 2 and "--video-lens and --video-fovy go with --video" in res.output
    res = run("ego", "import-video", tmp_path / "fish.mp4", "--head-poses", tmp_path / "traj.npy", "--scale", "1",
              "--video-rotation", "0", "--video-lens", "fisheye:120", "--out", tmp_path / "ok")
    assert res.exit_code == 0, res.output


def test_what_looks_like_a_fisheye():
    """Dark corners with lit sides (outside a fisheye's image circle) ask for --video-lens;
    letterbox bars, a dark video and a pinhole's frames do not."""
    from kinpoly.egocentric.video import encoder_view, looks_fisheye

    look = _panorama()
    R = _M["opencv"].T
    fish = look(R, _fisheye_rays(_aria().fit(128, 128), 128))[None]
    pin = look(R, pinhole_rays(128, 128, 100.0))[None]
    letterbox = pin.copy()
    letterbox[:, :24] = letterbox[:, -24:] = 0
    assert looks_fisheye(fish) and not looks_fisheye(pin) and not looks_fisheye(letterbox)
    assert not looks_fisheye((fish // 8).astype(np.uint8))  # too dark to tell
    if ADT.is_dir():  # Project Aria's real RGB frames
        import cv2

        frames = [encoder_view(cv2.imread(str(f))[..., ::-1], 128, 128) for f in sorted((ADT / "frames").glob("rgb_*"))]
        assert looks_fisheye(np.stack(frames))
