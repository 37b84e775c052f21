"""Scene synthesis on real interaction clips and the egocentric dataset build (deterministic,
resumable, failures listed), its CLI, and the head-camera renderer it uses."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

render = pytest.importorskip("kinpoly.visualization.render", exc_type=ImportError,
                             reason="offscreen rendering unavailable (needs EGL or OSMesa)")

from kinpoly.egocentric.build import EgoConfig, build_dataset  # noqa: E402
from kinpoly.egocentric.scenes import ScenePlacementError, object_penetration, synthesize_scene  # noqa: E402
from kinpoly.egocentric.take import EgoDataset, EgoTake  # noqa: E402
from kinpoly.evaluation.metrics import scan_contacts  # noqa: E402
from kinpoly.motion.clip import ClipFolder  # noqa: E402

_REASON = render.check_rendering()


@pytest.fixture(scope="module")
def terrain(shared_data):
    from kinpoly.motion.importers import import_file

    return {n: import_file(shared_data / "interactions" / f"{n}.amc")[0] for n in ("03_01", "03_02")}


def test_step_scene_supports_feet_without_penetration(terrain):
    clip = terrain["03_01"]
    res = synthesize_scene(clip)
    assert res.action == "step" and not res.detected
    kinds = [t.object.kind for t in res.tracks]
    assert kinds and set(kinds) <= {"step", "platform", "bar"}
    # independent check with the evaluation's contact scan: no contact deeper than 1 cm
    pen = scan_contacts(clip, res.tracks).penetration - scan_contacts(clip, []).penetration
    assert pen.max() <= 0.005 + 1e-9
    # the feet really stand on them: some step top is within 3 cm of a planted sole
    scan = scan_contacts(clip, res.tracks)
    assert scan.touches(("L_Ankle", "R_Ankle", "L_Toe", "R_Toe"), "step")


def test_push_without_push_motion_is_reported(terrain):
    clip = dataclasses.replace(terrain["03_02"], action="push")
    with pytest.raises(ScenePlacementError, match="03_02: push"):
        synthesize_scene(clip)


def test_avoid_can_beside_path_untouched(terrain):
    clip = dataclasses.replace(terrain["03_02"], action="avoid", action_intervals=[])
    res = synthesize_scene(clip)
    cans = [t for t in res.tracks if t.object.kind == "can"]
    assert len(cans) == 1
    scan = scan_contacts(clip, res.tracks)
    assert not scan.touches(tuple(__import__("kinpoly.humanoid.skeleton", fromlist=["BODY_NAMES"]).BODY_NAMES), "can")
    d = np.linalg.norm(clip.qpos[:, :2] - cans[0].poses[0, :2], axis=1).min()
    assert d < 1.2  # near the path


def test_locomotion_distractor_out_of_the_way():
    from kinpoly.humanoid.mjcf import rest_qpos
    from kinpoly.motion.clip import MotionClip

    q = np.tile(rest_qpos(), (60, 1))
    q[:, 0] = np.linspace(-1.0, 1.0, 60)
    clip = MotionClip("glide", q, action="locomotion")
    res = synthesize_scene(clip)
    tables = [t for t in res.tracks if t.object.kind == "table"]
    assert tables
    assert object_penetration(clip, tables).max() == 0.0


def _encoder_checkpoint(path: Path) -> Path:
    import torch

    from kinpoly.egocentric.flow import make_encoder

    torch.manual_seed(0)
    m = make_encoder(32, 64, 8)
    torch.save({"state_dict": {k: v.half() for k, v in m.state_dict().items()},
                "config": {"size": 32, "feature_dim": 64, "width": 8},
                "vel_mean": [0.0] * 6, "vel_std": [1.0] * 6}, path)
    return path


def test_build_deterministic_resumable_with_failures(tmp_path, terrain):
    from click.testing import CliRunner

    from kinpoly.cli import main

    folder = ClipFolder(tmp_path / "motions", create=True)
    clips = {"03_01": terrain["03_01"].slice(0, 40), "03_02": terrain["03_02"].slice(0, 40)}
    for c in clips.values():
        folder.add(c)
    folder.add(terrain["03_02"].slice(0, 5, name="tiny"))
    cfg = EgoConfig(encoder=str(_encoder_checkpoint(tmp_path / "enc.pt")), test_fraction=0.5, width=64, height=64,
                    noise=dataclasses.replace(EgoConfig().noise, enabled=True))
    a = build_dataset(tmp_path / "motions", tmp_path / "a", cfg, workers=2, progress=False, save_video=True)
    assert a["takes"] == 2 and a["new_takes"] == 2
    assert [f["take"] for f in a["failures"]] == ["tiny"]
    assert "tiny" in a["failures"][0]["error"] and "too short" in a["failures"][0]["error"]
    assert (tmp_path / "a" / "videos" / "03_01.mp4").is_file()
    b = build_dataset(tmp_path / "motions", tmp_path / "b", cfg, workers=1, progress=False)
    assert b["takes"] == 2
    for name in ("03_01", "03_02"):
        ta, tb = EgoTake.load(tmp_path / "a" / "takes" / f"{name}.npz"), EgoTake.load(tmp_path / "b" / "takes" / f"{name}.npz")
        for k in ("head_pose", "head_vels", "object_poses", "image_features", "gt_head_pose", "qpos"):
            assert np.array_equal(getattr(ta, k), getattr(tb, k)), (name, k)
        assert ta.image_features.shape == (ta.num_frames, 64)
        assert not np.array_equal(ta.head_pose, ta.gt_head_pose)  # SLAM-like noise on
    # resume: a killed build keeps what it wrote; only the missing take is rebuilt
    (tmp_path / "a" / "takes" / "03_02.npz").unlink()
    r = build_dataset(tmp_path / "motions", tmp_path / "a", cfg, workers=1, progress=False)
    assert r["reused_takes"] == 1 and r["new_takes"] == 1
    ds = EgoDataset(tmp_path / "a")
    assert ds.names == ["03_01", "03_02"] and ds[0].action == "step"
    assert sorted(ds.split_lists["train"] + ds.split_lists["test"]) == ["03_01", "03_02"]
    assert ds.split_lists["test"]
    res = CliRunner().invoke(main, ["ego", "info", str(tmp_path / "a"), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["takes"] == 2 and info["per_action"]["step"]["takes"] == 2
    assert info["frames"] == 80
    assert info["failures"] == 1


def test_unlabelled_sit_down_gets_a_chair():
    """Detection rule + seat placement on a synthetic sit-down: stand, then sit back onto
    a seat; the chair lands under the pelvis and thighs, touching them, without penetration."""
    from kinpoly.evaluation.metrics import SIT_BODIES
    from kinpoly.humanoid.mjcf import rest_qpos
    from kinpoly.humanoid.skeleton import BodyShape, hinge_index
    from kinpoly.motion.clip import MotionClip

    b = BodyShape()
    T = 90
    q = np.tile(rest_qpos(b), (T, 1))
    ramp = np.clip((np.arange(T) - 25) / 15, 0, 1)  # standing -> seated over frames 25..40
    for s in "LR":
        q[:, hinge_index(f"{s}_Hip", "y")] = -np.pi / 2 * ramp
        q[:, hinge_index(f"{s}_Knee", "y")] = np.pi / 2 * ramp
    thigh = 0.245 * b.height
    q[:, 2] -= thigh * ramp
    q[:, 0] = -thigh * ramp  # the pelvis moves back onto the seat, the feet stay
    clip = MotionClip("sitdown", q, body=b)
    res = synthesize_scene(clip)
    assert res.action == "sit" and res.detected and res.intervals
    chairs = [t for t in res.tracks if t.object.kind == "chair"]
    assert len(chairs) == 1
    assert abs(chairs[0].object.dims["seat_height"] - 0.434) < 0.02
    scan = scan_contacts(clip, res.tracks)
    assert scan.touches(SIT_BODIES, "chair")
    assert object_penetration(clip, res.tracks).max() <= 0.005


def test_long_clip_split_into_suffixed_takes(tmp_path, terrain):
    folder = ClipFolder(tmp_path / "motions", create=True)
    folder.add(terrain["03_02"].slice(0, 50))
    cfg = EgoConfig(features=False, width=48, height=48, take_seconds=1.0, test_fraction=0.0)
    rep = build_dataset(tmp_path / "motions", tmp_path / "out", cfg, workers=1, progress=False)
    assert rep["failures"] == [] and rep["takes"] == 2
    ds = EgoDataset(tmp_path / "out")
    assert ds.names == ["03_02_000", "03_02_001"]
    assert [ds[n].num_frames for n in ds.names] == [30, 20]
    assert all(ds[n].source_clip == "03_02" for n in ds.names)


def test_split_is_stratified_and_keeps_clips_together():
    from kinpoly.egocentric.build import split_takes

    entries = [{"name": f"w{i}", "source_clip": f"w{i}", "action": "locomotion"} for i in range(20)]
    entries += [{"name": f"s{i}_{k:03d}", "source_clip": f"s{i}", "action": "sit"} for i in range(3) for k in range(2)]
    entries += [{"name": "a0", "source_clip": "a0", "action": "avoid"}]
    split = split_takes(entries, seed=0, fraction=0.2)
    assert sorted(split["train"] + split["test"]) == sorted(e["name"] for e in entries)
    test_sit = {n.split("_")[0] for n in split["test"] if n.startswith("s")}
    train_sit = {n.split("_")[0] for n in split["train"] if n.startswith("s")}
    assert test_sit and train_sit and not test_sit & train_sit  # both sides, clips not cut
    assert split == split_takes(list(reversed(entries)), seed=0, fraction=0.2)
    assert split_takes(entries, 0, 0.0)["test"] == []


def test_mirror_build_adds_mirrored_twins_in_the_source_split(tmp_path, terrain):
    from kinpoly.motion.augment import mirror_pose

    folder = ClipFolder(tmp_path / "motions", create=True)
    folder.add(terrain["03_02"].slice(0, 30))
    cfg = EgoConfig(features=False, width=48, height=48, test_fraction=0.0, mirror=True)
    rep = build_dataset(tmp_path / "motions", tmp_path / "out", cfg, workers=1, progress=False)
    assert rep["failures"] == [] and rep["takes"] == 2
    ds = EgoDataset(tmp_path / "out", split="train")
    assert ds.names == ["03_02", "03_02_mirror"]
    a, m = ds["03_02"], ds["03_02_mirror"]
    assert m.source_clip == "03_02"
    np.testing.assert_allclose(m.gt_head_pose, mirror_pose(a.gt_head_pose), atol=1e-9)
    assert EgoConfig().digest() != cfg.digest()


def test_mirrored_twins_of_test_clips_stay_out_of_test():
    from kinpoly.egocentric.build import split_takes

    entries = [{"name": f"w{i}", "source_clip": f"w{i}", "action": "locomotion"} for i in range(20)]
    mirrored = [{**e, "name": e["name"] + "_mirror", "mirror": True} for e in entries]
    plain = split_takes(entries, seed=0, fraction=0.2)
    split = split_takes(entries + mirrored, seed=0, fraction=0.2)
    assert split["test"] == plain["test"]
    assert split["test_mirror"] == sorted(n + "_mirror" for n in plain["test"])
    assert split["train"] == sorted(plain["train"] + [n + "_mirror" for n in plain["train"]])


def test_unknown_split_is_a_clear_error(tmp_path, terrain):
    from click.testing import CliRunner

    from kinpoly.cli import main
    from kinpoly.egocentric.take import EgoDataError

    folder = ClipFolder(tmp_path / "motions", create=True)
    folder.add(terrain["03_02"].slice(0, 20))
    build_dataset(tmp_path / "motions", tmp_path / "out", EgoConfig(features=False, width=32, height=32),
                  workers=1, progress=False)
    with pytest.raises(EgoDataError, match="no split 'test_mirror'.*train, test"):
        EgoDataset(tmp_path / "out", split="test_mirror")
    res = CliRunner().invoke(main, ["estimate", "--take", str(tmp_path / "out"), "--split", "val",
                                    "--out", str(tmp_path / "est")])
    assert res.exit_code != 0 and "no split 'val'" in res.output
