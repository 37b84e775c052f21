"""Rendering: frames, reusable renderer, MP4 videos (single, side by side, head camera)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

# first: importing MuJoCo itself fails where no headless GL backend can load
render = pytest.importorskip("kinpoly.visualization.render", exc_type=ImportError,
                             reason="offscreen rendering unavailable (needs EGL or OSMesa)")

from kinpoly.humanoid.mjcf import rest_qpos  # noqa: E402
from kinpoly.humanoid.scene import SceneObject  # noqa: E402
from kinpoly.humanoid.skeleton import BodyShape, hinge_index  # noqa: E402
from kinpoly.motion.clip import MotionClip, ObjectTrack  # noqa: E402

_REASON = render.check_rendering()
pytestmark = pytest.mark.skipif(
    _REASON is not None, reason=f"offscreen rendering unavailable (needs EGL or OSMesa): {_REASON}")


def _hinge(body: str, axis: str) -> int:
    return hinge_index(body, axis)


def walking_clip(frames: int = 10, fps: float = 30.0, *, speed: float = 1.2, heading: float = 0.0,
                 objects: bool = False, name: str = "walk", body: BodyShape | None = None) -> MotionClip:
    """A walking-like motion: sinusoidal hips/knees/arms, root moving along ``heading``."""
    body = body or BodyShape()
    t = np.arange(frames) / fps
    phase = 2 * math.pi * 0.9 * t  # ~0.9 strides/s
    q = np.tile(rest_qpos(body), (frames, 1))
    direction = np.array([math.cos(heading), math.sin(heading)])
    q[:, :2] = (speed * t)[:, None] * direction
    q[:, 2] -= 0.03 * (1 - np.cos(2 * phase)) / 2
    q[:, 3], q[:, 6] = math.cos(heading / 2), math.sin(heading / 2)
    for side, sign, offset in (("L", 1.0, 0.0), ("R", -1.0, math.pi)):
        ph = phase + offset
        q[:, _hinge(f"{side}_Hip", "y")] = -0.45 * np.sin(ph)  # negative pitch = leg forward
        q[:, _hinge(f"{side}_Knee", "y")] = 0.8 * np.clip(np.cos(ph), 0, None)  # bent in swing
        q[:, _hinge(f"{side}_Shoulder", "x")] = -1.3 * sign  # arms down from the T-pose
        q[:, _hinge(f"{side}_Shoulder", "y")] = 0.35 * np.sin(ph)  # swings against the leg
        q[:, _hinge(f"{side}_Elbow", "z")] = -0.3 * sign  # forearm slightly forward
    objs = []
    if objects:
        box = SceneObject("box", "box", pos=(2.0, 0.6, 0.175))
        poses = np.tile([2.0, 0.6, 0.175, 1, 0, 0, 0], (frames, 1)).astype(float)
        poses[:, 0] += 0.3 * t  # the box slides forward
        chair = SceneObject("chair", "chair", pos=(1.0, -1.0, 0.0), quat=(0.7071, 0, 0, 0.7071))
        objs = [ObjectTrack(box, poses), ObjectTrack(chair, np.tile([1.0, -1.0, 0.0, 0.7071, 0, 0, 0.7071], (frames, 1)))]
    return MotionClip(name=name, qpos=q, fps=fps, body=body, objects=objs, source="synthetic")


def _read_video(path):
    import imageio.v2 as imageio

    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        frames = [np.asarray(f) for f in reader]
    finally:
        reader.close()
    return frames


def test_render_single_clip_mp4(tmp_path):
    clip = walking_clip(10, objects=True)
    out = tmp_path / "walk.mp4"
    stats = render.render_clips([clip], out, width=320, height=240, show_progress=False)
    assert out.exists() and stats.path == out
    assert stats.frames == 10 and (stats.width, stats.height) == (320, 240)
    frames = _read_video(out)
    assert len(frames) == 10
    assert frames[0].shape == (240, 320, 3)
    assert frames[0].std() > 5  # not a blank image
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"


def test_side_by_side_doubles_width_and_holds_last_frame(tmp_path):
    a = walking_clip(12, name="reference")
    a.qpos[:] = a.qpos[0]  # standing still: the shared camera does not move
    b = walking_clip(8, name="simulated", speed=1.0)
    out = tmp_path / "pair.mp4"
    stats = render.render_clips([a, b], out, width=160, height=120, show_progress=False)
    frames = _read_video(out)
    assert len(frames) == stats.frames == 12  # the longer clip's length
    assert frames[0].shape == (120, 320, 3)
    # the shorter clip's panel shows its last frame (7) for the rest, while it moved before
    right = [f[:, 160:].astype(float) for f in frames]
    assert max(np.abs(r - right[7]).mean() for r in right[8:]) < 1.0
    assert np.abs(right[0] - right[7]).mean() > 1.0


def test_head_camera_panel(tmp_path):
    clip = walking_clip(6)
    out = tmp_path / "head.mp4"
    stats = render.render_clips([clip], out, width=160, height=120, head_camera=True,
                                show_progress=False)
    frames = _read_video(out)
    assert frames[0].shape == (120, 320, 3) and stats.width == 320
    head = frames[0][:, 160:].astype(float)
    third = frames[0][:, :160].astype(float)
    assert head.std() > 5 and np.abs(head - third).mean() > 10  # a different, non-blank view


def test_humanoid_is_visible():
    clip = walking_clip(5)
    with render.ClipRenderer.for_clip(clip, width=160, height=120) as r:
        render.tracking_camera(clip).apply(r.camera, 2)
        with_person = r.frame(clip.qpos[2]).astype(float)
        away = clip.qpos[2].copy()
        away[:2] += 200.0  # far outside the view: an empty scene
        empty = r.frame(away).astype(float)
    diff = np.abs(with_person - empty).max(axis=2) > 30
    assert diff.mean() > 0.03, f"only {diff.mean():.3%} of pixels show the humanoid"
    # the person is near the middle of the image (the camera follows the pelvis)
    ys, xs = np.nonzero(diff)
    assert 30 < xs.mean() < 130 and 20 < ys.mean() < 100
    # the whole body is in view: it spans a good part of the image height but is not cut off
    assert ys.min() > 0 and ys.max() < 119 and ys.max() - ys.min() > 50


def _visible_geoms(r, qpos) -> set[str]:
    import mujoco

    r.renderer.enable_segmentation_rendering()
    try:
        seg = r.frame(qpos)
    finally:
        r.renderer.disable_segmentation_rendering()
    ids = np.unique(seg[..., 0][seg[..., 1] == mujoco.mjtObj.mjOBJ_GEOM])
    return {mujoco.mj_id2name(r.model, mujoco.mjtObj.mjOBJ_GEOM, int(i)) for i in ids}


def test_head_camera_sees_room_ahead_and_own_body_when_looking_down():
    clip = walking_clip(13)
    with render.ClipRenderer.for_clip(clip, width=128, height=128, view="head") as r:
        q = clip.qpos[12].copy()  # left leg forward
        ahead = r.frame(q).copy()
        seen_ahead = _visible_geoms(r, q)
        q[_hinge("Neck", "y")] = 0.7  # positive pitch tips the head forward: look down
        q[_hinge("Head", "y")] = 0.7
        down = r.frame(q).copy()
        seen_down = _visible_geoms(r, q)
    assert ahead.std() > 5 and np.abs(ahead.astype(float) - down.astype(float)).mean() > 5
    assert "floor" in seen_ahead and any(g.startswith("wall") for g in seen_ahead)
    assert "Head_geom" not in seen_ahead | seen_down  # the wearer's own head is hidden
    # looking down: the chest right under the eyes is not cut away by the near clipping plane,
    # and the legs and feet show
    assert {"Chest_geom", "Pelvis_geom"} <= seen_down
    assert {"L_Knee_geom", "L_Ankle_geom"} & seen_down


def test_render_frame_matches_shape_and_index_checks():
    clip = walking_clip(4)
    img = render.render_frame(clip, -1, width=96, height=64)
    assert img.shape == (64, 96, 3) and img.dtype == np.uint8
    head = render.render_frame(clip, 0, width=64, height=64, head_camera=True)
    assert head.shape == (64, 64, 3)
    with pytest.raises(IndexError):
        render.render_frame(clip, 4)


def test_static_and_free_objects_follow_their_tracks():
    clip = walking_clip(4, objects=True)
    with render.ClipRenderer.for_clip(clip, width=64, height=48) as r:
        r.set_state(clip.qpos[3], np.stack([t.poses[3] for t in clip.objects]))
        box = r.data.body("box")
        assert np.allclose(box.xpos, clip.objects[0].poses[3, :3])
        chair = r.data.body("chair")
        assert np.allclose(chair.xpos, [1.0, -1.0, 0.0])
        moved = clip.objects[1].poses[3].copy()
        moved[:3] = [0.5, 0.5, 0.0]
        r.set_state(clip.qpos[3], np.stack([clip.objects[0].poses[3], moved]))
        assert np.allclose(r.data.body("chair").xpos, [0.5, 0.5, 0.0])


def test_cached_model_is_not_modified():
    from kinpoly.humanoid.mjcf import ModelOptions, build_model

    clip = walking_clip(2, objects=True)
    objs = tuple(t.object for t in clip.objects)
    base = build_model(clip.body, objs, ModelOptions())
    before = (base.vis.global_.offwidth, base.body_pos.copy(), base.geom_group.copy())
    with render.ClipRenderer.for_clip(clip, width=64, height=48) as r:
        moved = np.stack([t.poses[0] for t in clip.objects])
        moved[1, :3] = [3.0, 3.0, 0.0]
        r.frame(clip.qpos[0], moved)
    with render.ClipRenderer.for_clip(clip, width=64, height=48, view="head") as r:
        r.frame(clip.qpos[0])
    assert base.vis.global_.offwidth == before[0]
    assert np.array_equal(base.body_pos, before[1]) and np.array_equal(base.geom_group, before[2])


def test_render_speed(capsys):
    clip = walking_clip(30)
    with render.ClipRenderer.for_clip(clip, width=320, height=240) as r:
        cam = render.tracking_camera(clip)
        cam.apply(r.camera, 0)
        r.frame(clip.qpos[0])
        start = time.perf_counter()
        for i in range(30):
            cam.apply(r.camera, i)
            r.frame(clip.qpos[i])
        third = 30 / (time.perf_counter() - start)
    with render.ClipRenderer.for_clip(clip, width=128, height=128, view="head") as r:
        r.frame(clip.qpos[0])
        start = time.perf_counter()
        for i in range(30):
            r.frame(clip.qpos[i])
        head = 30 / (time.perf_counter() - start)
    with capsys.disabled():
        print(f"\nrender speed: third-person 320x240 {third:.1f} frames/s, "
              f"head camera 128x128 {head:.1f} frames/s")
    assert third > 2 and head > 2  # software rendering on a small CPU is still usable


def test_render_command(tmp_path):
    from click.testing import CliRunner

    from kinpoly.cli import main
    from kinpoly.motion.clip import ClipFolder

    folder = ClipFolder(tmp_path / "clips", create=True)
    folder.add(walking_clip(12, name="walk_a"))
    path_b = walking_clip(9, name="walk_b").save(tmp_path / "b.npz")
    out = tmp_path / "v.mp4"
    result = CliRunner().invoke(main, ["render", str(tmp_path / "clips" / "walk_a"), str(path_b),
                                       "--out", str(out), "--width", "96", "--height", "64",
                                       "--end", "0.2", "--head-camera"])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output and "frames/s" in result.output
    frames = _read_video(out)
    assert len(frames) == 6 and frames[0].shape == (64, 288, 3)
    bad = CliRunner().invoke(main, ["render", str(tmp_path / "nope.npz"), "--out", str(out)])
    assert bad.exit_code != 0 and "nope" in bad.output and "Traceback" not in bad.output
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a clip")
    bad = CliRunner().invoke(main, ["render", str(junk), "--out", str(out)])
    assert bad.exit_code != 0 and "junk.npz" in bad.output
