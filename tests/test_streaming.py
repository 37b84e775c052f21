"""Live estimation from a head-pose stream (kinpoly.policy.streaming) against the offline
estimate of the same take, its latency, levelling and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from kinpoly.demo import SAMPLE_TAKES
from kinpoly.egocentric.features import head_velocities
from kinpoly.egocentric.take import EgoDataError, EgoDataset
from kinpoly.egocentric.trajectory import Trajectory, to_head_poses
from kinpoly.humanoid.scene import SceneObject
from kinpoly.policy.estimate import SHIPPED_HEAD_ONLY_POLICY, SHIPPED_POLICY, Estimator
from kinpoly.policy.streaming import StreamingEstimator


def _take(name: str = "step_03_03"):
    take = EgoDataset(SAMPLE_TAKES)[name]
    # a stream computes each head velocity from the poses it receives (the bundled takes' stored
    # ones are within 1e-15 of them; those of `kinpoly ego build` are these to the last bit)
    velocities = head_velocities(take.head_pose, take.fps)
    np.testing.assert_allclose(take.head_vels, velocities, atol=1e-12)
    take.head_vels = velocities
    return take


def _stream(take, lookahead: int, checkpoint=SHIPPED_POLICY, features: bool = True):
    objects = [SceneObject.from_dict(d) for d in take.meta.get("objects") or []]
    stream = StreamingEstimator(checkpoint, lookahead=lookahead, level=False, objects=objects, action=take.action,
                                body=take.body, name=take.name)
    emitted = []
    for k in range(take.num_frames):
        out = stream.push(take.head_pose[k, :3], take.head_pose[k, 3:],
                          feature=take.image_features[k] if features else None,
                          object_poses=take.object_world[k] if objects else None)
        emitted += [(k, f) for f in out]
    emitted += [(take.num_frames, f) for f in stream.close()]
    return stream, emitted


@pytest.fixture(scope="module")
def step_take():
    take = _take()
    assert take.meta.get("objects"), "the sample step take has its step object"
    return take, Estimator(SHIPPED_POLICY).estimate(take)


def test_stream_with_the_context_window_as_lookahead_is_the_offline_estimate(step_take):
    take, offline = step_take
    assert offline.falls, "the take restarts at least once, so the restart path is compared too"
    stream, emitted = _stream(take, lookahead=30)
    clip = stream.clip()
    np.testing.assert_array_equal(clip.qpos, offline.clip.qpos)
    assert [tuple(f) for f in clip.meta["falls"]] == [tuple(f) for f in offline.falls]
    np.testing.assert_array_equal(clip.objects[0].poses, offline.clip.objects[0].poses)
    # every frame once, in order, marked where the body was restarted
    assert [f.frame for _, f in emitted] == list(range(take.num_frames))
    assert {f.frame: f.restart for _, f in emitted if f.restart} == dict(offline.falls)
    np.testing.assert_array_equal(np.stack([f.qpos for _, f in emitted]), clip.qpos)


def test_two_frame_lookahead_is_exact_until_the_first_restart_and_two_frames_late(step_take):
    take, offline = step_take
    stream, emitted = _stream(take, lookahead=2)
    first_fall = offline.falls[0][0]
    qpos = stream.clip().qpos
    np.testing.assert_array_equal(qpos[:first_fall], offline.clip.qpos[:first_fall])
    context = stream.loop.context.cfg.context_frames
    # nothing during the first context window, then each frame two poses after its own
    assert min(k for k, _ in emitted) == context
    late = [k - f.frame for k, f in emitted if k > context and k < take.num_frames]
    assert late and set(late) == {2}
    assert len(stream.frames) == take.num_frames


def test_with_a_restart_encoder_the_live_stream_is_the_offline_estimate_two_frames_late():
    # the shipped head-only policy file carries a restart encoder: restarts read the second
    # before the fall, so nothing waits, and offline uses it too
    take = _take("walk_02_01")
    take.image_features = None
    offline = Estimator(SHIPPED_HEAD_ONLY_POLICY).estimate(take)
    assert offline.falls and Estimator(SHIPPED_HEAD_ONLY_POLICY).loop.restart_context is not None
    stream, emitted = _stream(take, lookahead=2, checkpoint=None, features=False)  # None: the head-only default
    np.testing.assert_array_equal(stream.clip().qpos, offline.clip.qpos)
    context = stream.loop.context.cfg.context_frames
    assert {k - f.frame for k, f in emitted if context < k < take.num_frames} == {2}
    # without it, the stream waits for the second after each restart, as before
    plain = Estimator(SHIPPED_HEAD_ONLY_POLICY, restart_context=False).estimate(take)
    assert not np.array_equal(plain.clip.qpos, offline.clip.qpos)


def test_the_restart_encoder_reads_nothing_after_its_frame():
    import torch

    from kinpoly.policy.data import take_tensors
    from kinpoly.policy.model import ContextEncoder, PolicyConfig

    torch.manual_seed(0)
    encoder = ContextEncoder(PolicyConfig()).eval()
    tt = take_tensors(_take("walk_02_01"), use_features=False)
    for frame in (0, 5, 40):
        before = encoder.pose_before(tt, frame)
        for key in ("head_pose", "head_vels", "obj"):
            getattr(tt, key)[frame + 1:] += 0.5
        torch.testing.assert_close(encoder.pose_before(tt, frame), before, rtol=0, atol=0)
        assert not torch.equal(encoder.take_pose(tt, frame), encoder.take_pose(take_tensors(_take("walk_02_01"), False), frame))


def test_train_restart_context_writes_a_policy_file_the_estimators_use(tmp_path):
    from click.testing import CliRunner

    from kinpoly.cli import main
    from kinpoly.config import read_checkpoint

    out = tmp_path / "policy.pt"
    res = CliRunner().invoke(main, ["train", "restart-context", str(SHIPPED_POLICY), str(out), "--no-progress",
                                    "--set", f"data={SAMPLE_TAKES}", "--set", "iterations=3",
                                    "--set", "eval_samples=2"])
    assert res.exit_code == 0, res.output
    blob = read_checkpoint(out, "policy")
    assert blob["restart_context_training"]["config"]["iterations"] == 3 and "restart_context" in blob
    assert Estimator(out).loop.restart_context is not None
    assert Estimator(out, restart_context=False).loop.restart_context is None
    with pytest.raises(ValueError, match="has no restart encoder"):
        Estimator(SHIPPED_POLICY, restart_context=True)


@pytest.mark.parametrize("world_up,camera_axes", [("z", "head"), ("y", "opencv"), ("z", "aria")])
def test_levelling_matches_a_trajectory_file_import(world_up, camera_axes):
    rng = np.random.default_rng(3)
    T = 12
    # a head looking roughly forward, walking, in the declared convention
    from kinpoly import rotations as rot
    from kinpoly.egocentric.trajectory import _M, Y_UP_TO_Z_UP, ARIA_T_DEVICE_CPF

    yaw = 0.7 + 0.05 * np.arange(T)
    R_head = rot.yaw_matrix(yaw) @ rot.quat_to_matrix(np.tile([0.99, 0.0, 0.1, 0.0], (T, 1)) / np.linalg.norm([0.99, 0, 0.1, 0]))
    W = Y_UP_TO_Z_UP if world_up == "y" else np.eye(3)
    R_world = W.T @ R_head  # the source world
    if camera_axes == "aria":
        R_cam = R_world @ (ARIA_T_DEVICE_CPF[:3, :3] @ _M["cpf"]).T
    else:
        R_cam = R_world @ _M[camera_axes].T
    pos = np.cumsum(rng.normal(0.02, 0.01, (T, 3)), 0) + 3.0
    quat = rot.matrix_to_quat(R_cam)
    traj = Trajectory(pos=pos, quat=quat, camera_axes=camera_axes, world_up=world_up, metric=True)
    expected = to_head_poses(traj, 1.0, 1.55).head_pose
    stream = StreamingEstimator(world_up=world_up, camera_axes=camera_axes, eye_height=1.55, max_frames=T)
    for k in range(T):
        stream.push(pos[k], quat[k])
    np.testing.assert_allclose(stream._head[:T], expected, atol=1e-12)


def test_a_stream_longer_than_its_first_buffers_is_still_the_offline_estimate(step_take, monkeypatch):
    # the per-frame buffers start small and double: nothing changes in the estimate
    from kinpoly.policy import streaming

    take, offline = step_take
    monkeypatch.setattr(streaming, "INITIAL_FRAMES", 16)
    objects = [SceneObject.from_dict(d) for d in take.meta["objects"]]
    stream = StreamingEstimator(SHIPPED_POLICY, lookahead=30, level=False, objects=objects, action=take.action,
                                body=take.body, name=take.name)
    for k in range(take.num_frames):
        stream.push(take.head_pose[k, :3], take.head_pose[k, 3:], feature=take.image_features[k],
                    object_poses=take.object_world[k])
    stream.close()
    assert len(stream._head) == 128 and stream.loop.sim.ref.num_frames == take.num_frames
    np.testing.assert_array_equal(stream.clip().qpos, offline.clip.qpos)
    np.testing.assert_array_equal(stream.clip().objects[0].poses, offline.clip.objects[0].poses)


def test_stream_mistakes_are_clear():
    s = StreamingEstimator(max_frames=3)
    with pytest.raises(EgoDataError, match="NaN"):
        s.push([0, 0, np.nan], [1, 0, 0, 0])
    with pytest.raises(EgoDataError, match="non-unit quaternion"):
        s.push([0, 0, 1.6], [2, 0, 0, 0])
    with pytest.raises(ValueError, match="quaternion wxyz"):
        s.push([0, 0], [1, 0, 0, 0])
    s.push([0, 0, 1.6], [1, 0, 0, 0])
    with pytest.raises(EgoDataError, match="faster than a person"):
        s.push([5, 0, 1.6], [1, 0, 0, 0])
    s.push([0.03, 0, 1.6], [1, 0, 0, 0])
    s.push([0.06, 0, 1.6], [1, 0, 0, 0])
    with pytest.raises(EgoDataError, match="max_frames=3"):
        s.push([0.09, 0, 1.6], [1, 0, 0, 0])
    with pytest.raises(RuntimeError, match="close"):
        s.clip()
    assert [f.frame for f in s.close()] == [0, 1, 2]
    assert s.clip().num_frames == 3
    with pytest.raises(RuntimeError, match="closed"):
        s.push([0.09, 0, 1.6], [1, 0, 0, 0])

    short = StreamingEstimator(max_frames=5)
    short.push([0, 0, 1.6], [1, 0, 0, 0])
    with pytest.raises(EgoDataError, match="at least 2 poses"):
        short.close()
    with pytest.raises(ValueError, match="at least that"):
        StreamingEstimator(lookahead=1)
    with pytest.raises(EgoDataError, match="world up 'auto'"):
        StreamingEstimator(world_up="auto")
    with pytest.raises(ValueError, match="camera axes"):
        StreamingEstimator(camera_axes="directx")  # unity and unreal are known (left-handed engines)
    features = StreamingEstimator(SHIPPED_POLICY, max_frames=5)
    with pytest.raises(EgoDataError, match="image feature"):
        features.push([0, 0, 1.6], [1, 0, 0, 0])


def _headset_lines(frames: int) -> list[str]:
    from kinpoly.demo import SAMPLE_HEADSET
    from kinpoly.egocentric.video import import_trajectory

    head = import_trajectory(SAMPLE_HEADSET).take.head_pose[:frames]
    return ["# t x y z qw qx qy qz"] + [" ".join(f"{v:.9f}" for v in [k / 30, *p]) for k, p in enumerate(head)]


def _cli(args, lines):
    from click.testing import CliRunner

    from kinpoly.cli import main

    return CliRunner().invoke(main, ["stream", *map(str, args)], input="\n".join(lines) + "\n")


def test_stream_command_answers_each_pose_with_a_json_line_and_writes_the_estimate(tmp_path):
    import json

    from kinpoly.motion.clip import ClipFolder
    from kinpoly.motion.smpl import clip_to_smpl

    res = _cli(["--joints", "--smpl", "--out", tmp_path / "est", "--name", "walk"], _headset_lines(45))
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert [r["frame"] for r in rows] == list(range(45))
    assert len(rows[0]["qpos"]) == 76 and np.asarray(rows[0]["joints"]).shape == (24, 3)
    assert rows[0]["restart"] is None
    whole = clip_to_smpl(ClipFolder(tmp_path / "est" / "clips").load("walk"))  # the written estimate, per frame
    np.testing.assert_allclose([r["smpl_pose"] for r in rows], whole["poses"], atol=1e-5)
    np.testing.assert_allclose([r["smpl_trans"] for r in rows], whole["trans"], atol=1e-5)
    for sub in ("clips/walk.npz", "bvh/walk.bvh", "smpl/walk.npz", "states/walk.npz", "proposals/walk.npz"):
        assert (tmp_path / "est" / sub).is_file(), sub


@pytest.mark.parametrize("edit,message", [
    (lambda lines: lines[:5] + ["1 2 3"], "3 values"),
    (lambda lines: lines[:5] + ["0.2 0 0 1.6 1 0 0 0"], "s after the previous pose"),
    (lambda lines: lines[:5] + ["a b c d e f g"], "not numbers"),
    (lambda lines: lines[:5] + ["0.1333333 0 0 1.6 0.5 0 0 0"], "non-unit quaternion"),
    (lambda lines: lines[:2], "at least 2 poses"),
])
def test_stream_command_mistakes_name_the_line(edit, message):
    res = _cli([], edit(_headset_lines(10)))
    assert res.exit_code == 1 and message in res.output and "Traceback" not in res.output, res.output


def test_stream_command_refuses_a_policy_that_reads_image_features():
    res = _cli(["--checkpoint", SHIPPED_POLICY], _headset_lines(5))
    assert res.exit_code == 1 and "image features" in res.output


def test_stream_command_view_shows_every_frame_as_it_comes(monkeypatch):
    import contextlib

    import mujoco

    from kinpoly.visualization import viewer

    shown = []

    class Handle:  # MuJoCo's passive viewer, standing in
        def __init__(self, model, data, key_callback=None):
            self.data, self.cam, self.user_scn = data, mujoco.MjvCamera(), mujoco.MjvScene(model, maxgeom=10)
            self.texts = []

        def is_running(self):
            return True

        def lock(self):
            return contextlib.nullcontext()

        def set_texts(self, texts):
            self.texts.append(texts[2])

        def sync(self):
            shown.append(self.data.qpos[:76].copy())

        def close(self):
            shown.append("closed")

    monkeypatch.setattr(viewer, "check_display", lambda: None)
    monkeypatch.setattr(viewer, "_launcher", lambda: Handle)
    res = _cli(["--view"], _headset_lines(40))
    assert res.exit_code == 0, res.output
    import json

    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert len(shown) == 41 and shown[-1] == "closed"
    np.testing.assert_allclose(np.stack(shown[:-1]), [r["qpos"] for r in rows], atol=1e-6)


def test_stream_command_view_without_a_display_is_one_line(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    res = _cli(["--view"], _headset_lines(5))
    assert res.exit_code == 1 and "no display" in res.output and "Traceback" not in res.output


def test_a_stream_of_images_is_the_video_import_and_its_estimate(shared_data):
    # a real head-camera video (EgoEgo ARES, 30 frames/s) and its SLAM trajectory: pushing the
    # frames one at a time computes the same flow features as `kinpoly estimate --video`
    from kinpoly.egocentric.video import import_video, read_video

    ares = shared_data / "egoego_ares"
    take = import_video(ares / "egocentric_video.mp4", ares / "droid_slam_traj.npy").take
    frames = read_video(ares / "egocentric_video.mp4", 224, 224)[0]  # resized by the stream itself
    stream = StreamingEstimator(SHIPPED_POLICY, level=False, lookahead=30, body=take.body)
    for k in range(take.num_frames):
        stream.push(take.head_pose[k, :3], take.head_pose[k, 3:], image=frames[k])
    stream.close()
    np.testing.assert_allclose(stream.take.feature[:take.num_frames].numpy(), take.image_features, atol=1e-5)
    offline = Estimator(SHIPPED_POLICY).estimate(take)
    np.testing.assert_allclose(stream.clip().qpos, offline.clip.qpos, atol=1e-3)  # the encoder batched or not


def test_image_input_mistakes():
    s = StreamingEstimator(SHIPPED_POLICY, max_frames=5)
    with pytest.raises(EgoDataError, match="RGB uint8"):
        s.push([0, 0, 1.6], [1, 0, 0, 0], image=np.zeros((8, 8)))
    with pytest.raises(EgoDataError, match="image or the 512-d feature"):
        s.push([0, 0, 1.6], [1, 0, 0, 0], image=np.zeros((8, 8, 3), np.uint8), feature=np.zeros(512))
    s.push([0, 0, 1.6], [1, 0, 0, 0], image=np.zeros((64, 80, 3), np.uint8))
    with pytest.raises(EgoDataError, match="the same one each time"):
        s.push([0.01, 0, 1.6], [1, 0, 0, 0], feature=np.zeros(512))
    s.push([0.01, 0, 1.6], [1, 0, 0, 0], image=np.full((64, 80, 3), 90, np.uint8))
    assert np.isfinite(s.take.feature[0].numpy()).all() and s.take.feature[0].abs().sum() > 0


def test_objects_are_levelled_with_the_head():
    # the same head and object motion given in another Z-up world (turned and moved): what the
    # policy reads (the object relative to the head's heading frame) does not change
    from kinpoly import rotations as rot

    take = _take("step_03_03")
    objects = [SceneObject.from_dict(d) for d in take.meta["objects"]]
    R = rot.yaw_matrix(np.array(1.1))
    shift = np.array([4.0, -2.0, 0.7])

    def moved(poses):
        poses = np.asarray(poses, dtype=np.float64).reshape(-1, 7)
        q = rot.matrix_to_quat(R @ rot.quat_to_matrix(poses[:, 3:]))
        return np.concatenate([poses[:, :3] @ R.T + shift, q], 1)

    declared = [moved(np.r_[o.pos, o.quat])[0] for o in objects]
    there = [SceneObject(o.kind, o.name, tuple(p[:3]), tuple(p[3:]), o.size) for o, p in zip(objects, declared)]
    streams = [StreamingEstimator(SHIPPED_HEAD_ONLY_POLICY, level=level, objects=objs, max_frames=20)
               for level, objs in ((False, objects), (True, there))]
    for k in range(20):
        head = take.head_pose[k]
        streams[0].push(head[:3], head[3:], object_poses=take.object_world[k])
        h = moved(head)[0]
        streams[1].push(h[:3], h[3:], object_poses=moved(take.object_world[k]))
    np.testing.assert_allclose(streams[1]._object_rel[:20], streams[0]._object_rel[:20], atol=1e-9)


def test_stream_command_with_the_head_cameras_video_is_the_video_estimate(shared_data, tmp_path):
    # `kinpoly stream --video`: one frame per pose line; with the context window as lookahead
    # the stream is `kinpoly estimate --video` of the same recording
    import json

    from kinpoly.egocentric.video import import_video

    ares = shared_data / "egoego_ares"
    take = import_video(ares / "egocentric_video.mp4", ares / "droid_slam_traj.npy").take
    lines = [" ".join(f"{v:.12f}" for v in p) for p in take.head_pose]  # levelled already: levelling again changes nothing
    args = ["--video", ares / "egocentric_video.mp4", "--lookahead", 30, "--eye-height", f"{take.head_pose[0, 2]:.12f}"]
    res = _cli(args, lines)
    assert res.exit_code == 0, res.output
    qpos = np.array([json.loads(line)["qpos"] for line in res.stdout.splitlines() if line.startswith("{")])
    offline = Estimator(SHIPPED_POLICY).estimate(take)
    assert len(qpos) == take.num_frames
    np.testing.assert_allclose(qpos, offline.clip.qpos, atol=2e-3)
    # more poses than frames, a video at another rate, a policy that reads no features
    res = _cli(args, lines + lines[-1:])
    assert res.exit_code == 1 and f"line {take.num_frames + 1}: the video has no frame" in res.output
    import imageio.v2 as imageio

    with imageio.get_writer(str(tmp_path / "v25.mp4"), fps=25, codec="libx264", macro_block_size=1) as w:
        for _ in range(3):
            w.append_data(np.zeros((32, 32, 3), np.uint8))
    res = _cli(["--video", tmp_path / "v25.mp4"], lines[:5])
    assert res.exit_code == 1 and "25 frames/s" in res.output
    res = _cli(["--video", tmp_path / "v25.mp4", "--checkpoint", SHIPPED_HEAD_ONLY_POLICY], lines[:5])
    assert res.exit_code == 1 and "reads no image features" in res.output


def test_without_objects_the_stream_and_the_offline_estimate_show_the_same_placeholder_table():
    # a take without objects: both read a PlaceholderTable frame by frame, so the live stream is
    # still the offline estimate; without the placeholder the estimate is another
    take = _take("walk_02_01")
    take.image_features = None
    take.object_world, take.object_poses = None, np.zeros((take.num_frames, 0, 7))
    take.object_kinds, take.object_names, take.meta["objects"] = [], [], []
    offline = Estimator(SHIPPED_HEAD_ONLY_POLICY).estimate(take)
    stream, _ = _stream(take, lookahead=2, checkpoint=None, features=False)
    assert bool(stream.take.obj[:take.num_frames, 7].all())  # the table is there for the policy
    np.testing.assert_array_equal(stream.clip().qpos, offline.clip.qpos)
    bare = Estimator(SHIPPED_HEAD_ONLY_POLICY, placeholder_object=False).estimate(take)
    assert not np.array_equal(bare.clip.qpos, offline.clip.qpos)
    assert not offline.clip.objects  # and the simulation has no object


def test_a_game_engines_stream_takes_its_own_up():
    from kinpoly.egocentric.trajectory import world_up_rotation

    np.testing.assert_array_equal(StreamingEstimator(camera_axes="unity").world, world_up_rotation("y"))
    np.testing.assert_array_equal(StreamingEstimator(camera_axes="unreal").world, world_up_rotation("z"))
    np.testing.assert_array_equal(StreamingEstimator().world, world_up_rotation("z"))
