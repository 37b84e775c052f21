"""Scene objects given with a head trajectory (kinpoly.egocentric.objects): the file format and
its errors, placing them with the head into kinpoly's world, and the commands that read them
(imports, `kinpoly estimate --head-poses`, `kinpoly stream`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from kinpoly import rotations as rot
from kinpoly.cli import main
from kinpoly.demo import SAMPLE_TAKES
from kinpoly.egocentric.objects import read_objects
from kinpoly.egocentric.take import EgoDataError, EgoDataset, EgoTake
from kinpoly.egocentric.trajectory import Y_UP_TO_Z_UP
from kinpoly.egocentric.video import import_trajectory

# the input world: Y up, turned and moved away from kinpoly's (p_in = A p + b)
A = Y_UP_TO_Z_UP.T @ rot.yaw_matrix(np.array(0.7))
B = np.array([3.0, -1.0, 2.0])


def _to_input_world(poses: np.ndarray) -> np.ndarray:
    poses = np.asarray(poses, dtype=np.float64)
    q = rot.matrix_to_quat(A @ rot.quat_to_matrix(poses[..., 3:7]))
    return np.concatenate([poses[..., :3] @ A.T + B, q], -1)


def _write_poses(path, poses: np.ndarray, fps: float = 30.0, extra: str = "") -> None:
    lines = ["time,x,y,z,qw,qx,qy,qz" + (",world_up" if extra else "")]
    lines += [",".join(f"{v:.10f}" for v in [i / fps, *p]) + (f",{extra}" if extra else "") for i, p in enumerate(poses)]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def sit_recording(tmp_path_factory):
    """The bundled sit take as a user would have it: head poses in a Y-up world of their own
    (CSV) and its objects' poses there (YAML)."""
    take = EgoDataset(SAMPLE_TAKES)["sit_01_06"]
    folder = tmp_path_factory.mktemp("sit")
    _write_poses(folder / "head.csv", _to_input_world(take.head_pose), extra="y")
    objects = []
    for k, d in enumerate(take.meta["objects"]):
        p = _to_input_world(take.object_world[0, k])
        objects.append({"kind": d["kind"], "name": d["name"], "pos": p[:3].tolist(), "quat": p[3:].tolist(),
                        "size": d["size"]})
    (folder / "objects.yaml").write_text(yaml.safe_dump({"objects": objects}))
    return take, folder


def _import(take, folder, objects="objects.yaml", eye_height=None):
    return import_trajectory(folder / "head.csv", scale=1.0, action=take.action, objects=folder / objects,
                             eye_height=take.head_pose[0, 2] if eye_height is None else eye_height)


def test_objects_are_placed_with_the_head(sit_recording):
    take, folder = sit_recording
    res = _import(take, folder)
    got = res.take
    # what the policy reads (each object relative to the head's heading frame) is the take's
    np.testing.assert_allclose(got.object_poses, take.object_poses, atol=1e-7)
    assert got.object_kinds == take.object_kinds and got.object_names == take.object_names
    assert [o["name"] for o in got.meta["objects"]] == ["step0", "bar1"]
    assert got.meta["objects"][0]["pos"][2] == pytest.approx(0.0, abs=1e-7)  # the step on the floor
    assert got.meta["objects"][1]["pos"][2] == pytest.approx(take.meta["objects"][1]["pos"][2], abs=1e-7)
    report = {o["name"]: o for o in res.report["objects"]}
    assert report["step0"]["on_floor"] and not report["bar1"]["on_floor"]  # a bar hangs at its axis
    assert report["step0"]["floor_offset_m"] == pytest.approx(0.0, abs=1e-4)


def test_objects_on_the_floor_follow_the_floor_the_eye_height_sets(sit_recording):
    take, folder = sit_recording
    got = _import(take, folder, eye_height=take.head_pose[0, 2] + 0.05).take  # the floor 5 cm lower
    step, bar = got.meta["objects"]
    assert step["pos"][2] == pytest.approx(0.0, abs=1e-7)  # still on the floor
    assert bar["pos"][2] == pytest.approx(take.meta["objects"][1]["pos"][2] + 0.05, abs=1e-7)  # where given
    assert got.meta["import"]["objects"][0]["floor_offset_m"] == pytest.approx(-0.05, abs=1e-4)


def test_the_estimate_of_the_files_is_the_takes(sit_recording):
    # the same recording in another world: the same estimate (until the simulation's chaos
    # amplifies the float32 rounding of other world coordinates)
    from kinpoly.humanoid.kinematics import forward_kinematics
    from kinpoly.policy.estimate import SHIPPED_HEAD_ONLY_POLICY, Estimator

    take, folder = sit_recording
    got = _import(take, folder).take
    got.name, got.meta["body"] = take.name, take.meta["body"]  # the take's wearer
    take = EgoTake.load(SAMPLE_TAKES / "takes" / "sit_01_06.npz")
    take.qpos = take.gt_head_pose = None
    est = Estimator(SHIPPED_HEAD_ONLY_POLICY)
    a, b = est.estimate(take), est.estimate(got)
    heights = [forward_kinematics(e.clip.qpos, e.clip.body).positions[..., 2] for e in (a, b)]
    assert np.abs(heights[0][:10] - heights[1][:10]).max() < 0.005
    assert [o.object.kind for o in b.clip.objects] == ["step", "bar"]


def test_a_moving_object_follows_its_track(tmp_path):
    take = EgoDataset(SAMPLE_TAKES)["walk_02_01"]
    _write_poses(tmp_path / "head.csv", take.head_pose)
    T = take.num_frames
    t = np.arange(2 * T + 4) / 60.0 - 0.03  # 60 poses a second, a little before and after the head's
    box = np.zeros((len(t), 7))
    box[:, 0], box[:, 3] = 2.0 + 0.5 * t, 1.0  # pushed along +X at 0.5 m/s
    (tmp_path / "box.csv").write_text("time,x,y,z,qw,qx,qy,qz\n" + "\n".join(
        ",".join(f"{v:.10f}" for v in [ti, *p]) for ti, p in zip(t, box)) + "\n")
    (tmp_path / "objects.json").write_text(json.dumps([{"kind": "box", "track": "box.csv"}]))
    got = import_trajectory(tmp_path / "head.csv", scale=1.0, eye_height=take.head_pose[0, 2],
                            objects=tmp_path / "objects.json").take
    # kinpoly's world is the head's levelled one: compare the box's path relative to its start
    path = got.object_world[:, 0, :3] - got.object_world[0, 0, :3]
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 0.5 * np.arange(T) / 30.0, atol=1e-9)
    assert got.meta["import"]["objects"][0]["moving"]
    # a track that ends before the head's
    (tmp_path / "short.json").write_text(json.dumps([{"kind": "box", "track": "box.csv"}]))
    _write_poses(tmp_path / "long_head.csv", np.concatenate([take.head_pose, take.head_pose[-1:].repeat(30, 0)]))
    with pytest.raises(EgoDataError, match="track covers"):
        import_trajectory(tmp_path / "long_head.csv", scale=1.0, objects=tmp_path / "short.json")


@pytest.mark.parametrize("content,message", [
    ("objects: [{kind: sofa, pos: [0, 0, 0]}]", "kind 'sofa'"),
    ("objects: [{kind: chair, pos: [0, 0, 0], colour: red}]", "unknown keys ['colour']"),
    ("objects: [{kind: chair}]", "needs pos"),
    ("objects: [{kind: box, pos: [0, 0, 0], track: b.csv}]", "not both"),
    ("objects: [{kind: chair, pos: [0, 0]}]", "pos must be 3 finite numbers"),
    ("objects: [{kind: chair, pos: [0, 0, .nan]}]", "pos must be 3 finite numbers"),
    ("objects: [{kind: chair, pos: [0, 0, 0], quat: [0, 0, 0, 0]}]", "quat is zero"),
    ("objects: [{kind: chair, pos: [0, 0, 0], size: {legs: 4}}]", "unknown size keys"),
    ("objects: [{kind: chair, pos: [0, 0, 0], size: {seat_height: -1}}]", "positive metres"),
    ("objects: [{kind: chair, pos: [0, 0, 0], on_floor: maybe}]", "on_floor is true or false"),
    ("[{kind: chair, name: a, pos: [0, 0, 0]}, {kind: can, name: a, pos: [1, 0, 0]}]", "used twice"),
    ("objects: [{kind: box, track: missing.csv}]", "no such track file"),
    ("objects: 3", "expected a list of objects"),
    ("objects: [{kind: chair, pos: [0, 0, 0]", "not a YAML/JSON objects file"),
])
def test_objects_file_mistakes_are_one_clear_line(tmp_path, content, message):
    (tmp_path / "objects.yaml").write_text(content)
    with pytest.raises(EgoDataError) as e:
        read_objects(tmp_path / "objects.yaml")
    assert message in str(e.value) and str(tmp_path / "objects.yaml") in str(e.value)


def test_an_object_on_the_floor_must_be_upright_in_the_trajectorys_world(sit_recording, tmp_path):
    take, folder = sit_recording
    # identity in a Y-up world lays a chair on its back: its Z is the world's horizontal Z
    (tmp_path / "objects.yaml").write_text("objects: [{kind: chair, pos: [4.0, 0.0, 2.0]}]")
    with pytest.raises(EgoDataError, match="90 degrees from the world's up"):
        import_trajectory(folder / "head.csv", scale=1.0, objects=tmp_path / "objects.yaml")


def test_estimate_and_import_commands_read_objects(sit_recording, tmp_path):
    from kinpoly.motion.clip import ClipFolder

    take, folder = sit_recording
    args = ["--head-poses", folder / "head.csv", "--objects", folder / "objects.yaml", "--action", "sit",
            "--scale", "1", "--eye-height", f"{take.head_pose[0, 2]:.6f}"]
    res = CliRunner().invoke(main, ["estimate", *map(str, args), "--out", str(tmp_path / "est"), "--videos", "0",
                                    "--no-progress"])
    assert res.exit_code == 0, res.output
    clip = ClipFolder(tmp_path / "est" / "clips").load("head")
    assert [o.object.name for o in clip.objects] == ["step0", "bar1"]
    res = CliRunner().invoke(main, ["ego", "import-trajectory", str(folder / "head.csv"), "--objects",
                                    str(folder / "objects.yaml"), "--out", str(tmp_path / "takes"), "--scale", "1"])
    assert res.exit_code == 0, res.output
    assert EgoTake.load(tmp_path / "takes" / "takes" / "head.npz").object_names == ["step0", "bar1"]
    res = CliRunner().invoke(main, ["estimate", "--take", str(SAMPLE_TAKES), "--objects", str(folder / "objects.yaml"),
                                    "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "--objects goes with --video or --head-poses" in res.output


def test_stream_command_reads_objects_and_their_poses_on_each_line(sit_recording, tmp_path):
    take, folder = sit_recording
    head = _to_input_world(take.head_pose[:40])
    lines = [" ".join(f"{v:.9f}" for v in p) for p in head]
    args = ["--objects", folder / "objects.yaml", "--world-up", "y", "--eye-height", take.head_pose[0, 2],
            "--max-frames", 40, "--out", tmp_path / "est", "--name", "sit"]

    def run(lines, args=args):
        return CliRunner().invoke(main, ["stream", *map(str, args)], input="\n".join(lines) + "\n")

    res = run(lines)
    assert res.exit_code == 0, res.output
    from kinpoly.motion.clip import ClipFolder

    clip = ClipFolder(tmp_path / "est" / "clips").load("sit")
    # the stream places the objects as the import does (its levelling from the first pose)
    imported = _import(take, folder).take
    assert [t.object.name for t in clip.objects] == ["step0", "bar1"]
    for k, track in enumerate(clip.objects):
        np.testing.assert_allclose(track.poses, imported.object_world[:40, k], atol=1e-6)
    # where the objects are now, after each pose; the wrong number of values names the line
    objects = _to_input_world(take.object_world[:40])
    moving = [line + " " + " ".join(f"{v:.9f}" for v in objects[i].reshape(-1)) for i, line in enumerate(lines)]
    res = run(moving, args[:-4])
    assert res.exit_code == 0, res.output
    res = run(moving[:3] + [moving[3] + " 1.0 2.0"], args[:-4])
    assert res.exit_code == 1 and "line 4: 23 values" in res.output and "each of the --objects (2), or none" in res.output
    # a moving object (one with a track) has its pose on every line
    (tmp_path / "box.csv").write_text("time,x,y,z,qw,qx,qy,qz\n0,4,0,2,1,0,0,0\n10,5,0,2,1,0,0,0\n")
    (tmp_path / "moving.yaml").write_text("[{kind: box, track: box.csv, on_floor: false}]")
    res = run(lines, ["--objects", tmp_path / "moving.yaml", "--world-up", "y"])
    assert res.exit_code == 1 and "line 1: 7 values" in res.output and "each of the --objects (1)" in res.output


def test_a_video_import_places_objects_as_the_trajectory_import(tmp_path):
    # a 60 fps video (resampled to the take's 30 Hz) and its timestamped SLAM trajectory: the
    # objects are where the trajectory alone puts them, a moving one at the take frames' times
    import imageio.v2 as imageio

    from kinpoly.egocentric.video import import_video

    rng = np.random.default_rng(0)
    tex = rng.integers(0, 255, (48, 256, 3), dtype=np.uint8)
    with imageio.get_writer(str(tmp_path / "v.mp4"), fps=60, codec="libx264", macro_block_size=1, quality=8) as w:
        for k in range(61):
            w.append_data(tex[:, k:k + 64])
    t = 100.0 + np.arange(31) / 30.0  # a second of a walk in a SLAM world (OpenCV camera axes, Y down)
    pos = np.c_[1.2 * (t - 100.0), 0.02 * np.sin(9 * t), np.zeros(31)]
    R = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # camera looking along +X
    q = rot.matrix_to_quat(np.repeat(R[None], 31, 0))
    np.savetxt(tmp_path / "traj.txt", np.c_[t, pos, q[:, [1, 2, 3, 0]]], fmt="%.9f")
    (tmp_path / "box.csv").write_text("time,x,y,z,qw,qx,qy,qz\n99,3,0,0,1,0,0,0\n102,3,0,3,1,0,0,0\n")
    (tmp_path / "objects.yaml").write_text("- {kind: box, track: box.csv, on_floor: false}\n"
                                           "- {kind: bar, pos: [2, -0.5, 0], quat: [1, 0, 0, 0]}\n")
    video = import_video(tmp_path / "v.mp4", tmp_path / "traj.txt", scale=1.0, objects=tmp_path / "objects.yaml")
    alone = import_trajectory(tmp_path / "traj.txt", scale=1.0, objects=tmp_path / "objects.yaml")
    assert video.take.num_frames == alone.take.num_frames == 31
    np.testing.assert_allclose(video.take.object_world, alone.take.object_world, atol=1e-6)
    np.testing.assert_allclose(video.take.object_poses, alone.take.object_poses, atol=1e-6)
    box = video.take.object_world[:, 0, :3]
    np.testing.assert_allclose(np.linalg.norm(box - box[0], axis=1), np.arange(31) / 30.0, atol=1e-6)  # 1 m/s
    assert video.report["objects_file"] == str(tmp_path / "objects.yaml")


@pytest.mark.parametrize("track,message", [
    ("x,y,z,qw,qx,qy,qz\n0,0,0,1,0,0,0\n", "missing time"),
    ("time,x,y,z,qw,qx,qy,qz\n1,0,0,0,1,0,0,0\n0,0,0,0,1,0,0,0\n", "increasing times"),
    ("time,x,y,z,qw,qx,qy,qz\n0,0,0,0,1,0,0,0\n1,0,0,nan,1,0,0,0\n", "finite poses"),
    ("time,x,y,z,qw,qx,qy,qz\n0,0,0,0,0,0,0,0\n1,0,0,0,1,0,0,0\n", "zero quaternion"),
    ("time,x,y,z,qw,qx,qy,qz\n0,0,0,0,1,0,0,zero\n", "unreadable track"),
])
def test_track_mistakes_are_one_clear_line(tmp_path, track, message):
    (tmp_path / "t.csv").write_text(track)
    (tmp_path / "objects.yaml").write_text("[{kind: box, name: crate, track: t.csv}]")
    with pytest.raises(EgoDataError) as e:
        read_objects(tmp_path / "objects.yaml")
    assert message in str(e.value) and "(crate)" in str(e.value)


def _engine_world(poses: np.ndarray, engine: str) -> np.ndarray:
    """Poses of kinpoly's world (a head's or an object's) as a left-handed game engine logs
    them: Unity (Y up; a camera's or object's x right, y up, z forward), Unreal (Z up; x forward,
    y right, z up; cm)."""
    from kinpoly.egocentric.trajectory import _M

    R, p = rot.quat_to_matrix(np.asarray(poses)[..., 3:7]), np.asarray(poses)[..., :3]
    if engine == "unity":
        S, A = np.diag([1.0, 1.0, -1.0]), Y_UP_TO_Z_UP.T
        R, p = S @ (A @ R @ _M["opengl"].T) @ S, p @ (S @ A).T
    else:
        S = np.diag([1.0, -1.0, 1.0])
        R, p = S @ R @ S, p @ S * 100.0
    return np.concatenate([p, rot.matrix_to_quat(R)], -1)


@pytest.mark.parametrize("engine", ["unity", "unreal"])
def test_a_game_engines_left_handed_recording(sit_recording, tmp_path, engine):
    """Head poses and objects logged by Unity or Unreal (left-handed, their own object axes) read
    as the take, once the file says which engine (no world_up needed); a stream says it with
    --camera-axes."""
    take, folder = sit_recording
    head = _engine_world(take.head_pose, engine)
    rows = [",".join(f"{v:.10f}" for v in [i / 30.0, *p]) + f",{engine}" for i, p in enumerate(head)]
    (tmp_path / "head.csv").write_text("\n".join(["time,x,y,z,qw,qx,qy,qz,camera_axes"] + rows) + "\n")
    objects = []
    for k, d in enumerate(take.meta["objects"]):
        p = _engine_world(take.object_world[0, k], engine)
        objects.append({"kind": d["kind"], "name": d["name"], "pos": p[:3].tolist(), "quat": p[3:].tolist(),
                        "size": d["size"]})
    (tmp_path / "objects.yaml").write_text(yaml.safe_dump({"objects": objects}))
    got = _import(take, tmp_path).take
    np.testing.assert_allclose(got.head_pose, _import(take, folder).take.head_pose, atol=1e-6)
    np.testing.assert_allclose(got.object_poses, take.object_poses, atol=1e-6)
    lines = [" ".join(f"{v:.9f}" for v in p) for p in head[:20]]
    res = CliRunner().invoke(main, ["stream", "--camera-axes", engine, "--objects", str(tmp_path / "objects.yaml"),
                                    "--eye-height", str(take.head_pose[0, 2]), "--out", str(tmp_path / "est"),
                                    "--name", "sit"], input="\n".join(lines) + "\n")
    assert res.exit_code == 0, res.output
    from kinpoly.motion.clip import ClipFolder

    clip = ClipFolder(tmp_path / "est" / "clips").load("sit")
    for k, track in enumerate(clip.objects):
        np.testing.assert_allclose(track.poses, got.object_world[:20, k], atol=1e-5)
