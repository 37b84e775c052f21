"""``kinpoly eval`` on mocap files of other tools (BVH, AMASS npz, ...), not only clip folders.

The ground truth is two clips imported from BVH (so grounded and on a fitted body, like any
imported clip), kept as a clip folder and exported again with ``kinpoly.motion.export``.
Tolerances are from measurement: a clip exported to BVH and imported again differs from itself
by about its own retargeting error: 0.016 mm root-relative and 0.11 mm global MPJPE for "walk",
0.13 mm and 1.1 mm for "turn" (larger joint angles, fitted less exactly), 0.046 mm and 1.2 mm
for the AMASS clip (whose first import is on the default body, the second on a fitted one);
the tests allow 0.25 mm and 2 mm.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from kinpoly.evaluation.commands import eval_command
from kinpoly.humanoid.mjcf import rest_qpos
from kinpoly.humanoid.skeleton import BodyShape
from kinpoly.motion.clip import ClipFolder, MotionClip
from kinpoly.motion.export import export_bvh
from kinpoly.motion.importers import import_file

ROUND_TRIP_MM = 0.25  # root-relative MPJPE of clip -> BVH -> clip (measured 0.016-0.13 mm)
ROUND_TRIP_GLOBAL_MM = 2.0  # global MPJPE of the same (measured 0.11-1.2 mm)
T = 45


def motion(phase: float, dx: float = 0.0) -> np.ndarray:
    """(T, 76) a walk that travels, turns and swings every hinge; ``dx`` shifts the root (m)."""
    t = np.arange(T) / 30.0
    q = np.tile(rest_qpos(BodyShape()), (T, 1))
    q[:, 0], q[:, 1] = 0.8 * t + dx, 0.1 * np.sin(t)
    yaw = 0.3 * t
    q[:, 3], q[:, 6] = np.cos(yaw / 2), np.sin(yaw / 2)
    q[:, 7:] = 0.2 * np.sin(2 * t[:, None] + phase * np.arange(69))
    return q


def imported(q: np.ndarray, name: str, tmp) -> MotionClip:
    """What ``kinpoly motion import`` makes of ``q`` written as a BVH file."""
    c = import_file(export_bvh(MotionClip(name=name, qpos=q, body=BodyShape()), tmp / f"{name}_src.bvh"))[0]
    c.name = name
    return c


def bvh_rows(path):
    head, motion_block = path.read_text().split("MOTION\n")
    lines = motion_block.strip().split("\n")
    frame_time = float(lines[1].split(":")[1])
    return head, frame_time, np.array([[float(v) for v in row.split()] for row in lines[2:]])


def write_bvh_rows(path, head, frame_time, rows):
    path.write_text(head + f"MOTION\nFrames: {len(rows)}\nFrame Time: {frame_time:.10f}\n"
                    + "\n".join(" ".join(f"{v:.6f}" for v in r) for r in rows) + "\n")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """gt_clips: clip folder (index.json) with walk and turn; gt_bvh: the same exported to BVH;
    shifted_bvh: both with the root moved 1 cm along X."""
    root = tmp_path_factory.mktemp("evalfmt")
    (root / "src").mkdir()
    gts = [imported(motion(1.0), "walk", root / "src"), imported(motion(2.0), "turn", root / "src")]
    folder = ClipFolder(root / "gt_clips", create=True)
    for sub in ("gt_bvh", "shifted_bvh"):
        (root / sub).mkdir()
    for c in gts:
        folder.add(c)
        export_bvh(c, root / "gt_bvh" / f"{c.name}.bvh")
        q = c.qpos.copy()
        q[:, 0] += 0.01
        export_bvh(MotionClip(name=c.name, qpos=q, body=c.body), root / "shifted_bvh" / f"{c.name}.bvh")
    return root


def run_eval(*args):
    return CliRunner().invoke(eval_command, [str(a) for a in args], catch_exceptions=False)


def scores(tmp_path, *args):
    out = tmp_path / "res.json"
    res = run_eval(*args, "--json", out)
    return res, json.loads(out.read_text())


def test_clip_folder_scored_against_its_own_bvh_export(data, tmp_path):
    res, d = scores(tmp_path, "--pred", data / "gt_bvh", "--gt", data / "gt_clips",
                    "--md", tmp_path / "r.md", "--plots", tmp_path / "plots")
    assert res.exit_code == 0, res.output
    assert set(d["clips"]) == {"walk", "turn"} and d["failures"] == []
    for c in d["clips"].values():
        assert c["frames"] == T
        assert c["mpjpe_mm"] < ROUND_TRIP_MM
        assert c["mpjpe_global_mm"] < ROUND_TRIP_GLOBAL_MM
        assert c["root_rot_err"] < 1e-4
    assert "| walk" in (tmp_path / "r.md").read_text()
    for png in ("per_joint_error.png", "worst_clips_error.png", "success_per_action.png"):
        assert (tmp_path / "plots" / png).read_bytes()[:4] == b"\x89PNG"


def test_bvh_against_bvh_known_offset(data, tmp_path):
    # every root 1 cm further along X: global MPJPE 10 mm, root-relative unchanged (the
    # import's grounding only moves clips vertically, and both bodies are fitted alike)
    res, d = scores(tmp_path, "--pred", data / "shifted_bvh", "--gt", data / "gt_bvh")
    assert res.exit_code == 0, res.output
    assert set(d["clips"]) == {"walk", "turn"}
    assert d["mpjpe_global_mm"] == pytest.approx(10.0, abs=0.1)
    assert d["mpjpe_mm"] < ROUND_TRIP_MM
    assert d["root_trans_err_m"] == pytest.approx(0.01, abs=1e-4)


def test_single_files_are_paired_whatever_their_names(data, tmp_path):
    pred = shutil.copy(data / "shifted_bvh" / "walk.bvh", tmp_path / "walk_method_x.bvh")
    res, d = scores(tmp_path, "--pred", pred, "--gt", data / "gt_clips" / "walk.npz")
    assert res.exit_code == 0, res.output
    assert list(d["clips"]) == ["walk"] and d["failures"] == []
    assert d["mpjpe_global_mm"] == pytest.approx(10.0, abs=0.1)


def test_single_file_against_a_folder_lists_the_rest(data, tmp_path):
    res, d = scores(tmp_path, "--pred", data / "gt_bvh" / "turn.bvh", "--gt", data / "gt_clips")
    assert res.exit_code == 0, res.output
    assert list(d["clips"]) == ["turn"]
    assert d["failures"] == [{"clip": "walk", "reason": "no prediction for this ground-truth clip"}]


def test_other_frame_rate_is_resampled(data, tmp_path):
    # the walk at 60 Hz: odd frames halfway between the 30 Hz ones, which the import's
    # resampling to 30 Hz lands on exactly
    head, ft, rows = bvh_rows(data / "gt_bvh" / "walk.bvh")
    up = np.empty((2 * len(rows) - 1, rows.shape[1]))
    up[0::2], up[1::2] = rows, (rows[:-1] + rows[1:]) / 2
    (tmp_path / "p").mkdir()
    write_bvh_rows(tmp_path / "p" / "walk.bvh", head, ft / 2, up)
    res, d = scores(tmp_path, "--pred", tmp_path / "p", "--gt", data / "gt_clips")
    assert res.exit_code == 0, res.output
    c = d["clips"]["walk"]
    assert c["frames"] == T
    assert c["mpjpe_mm"] < ROUND_TRIP_MM and c["mpjpe_global_mm"] < ROUND_TRIP_GLOBAL_MM


def test_amass_npz_against_bvh(tmp_path):
    # an AMASS file at 60 Hz as ground truth, the same motion as a 30 Hz BVH as prediction
    n = 61
    t = np.arange(n) / 60.0
    poses = np.zeros((n, 72))
    poses[:, 0] = np.pi / 2  # SMPL Y up -> AMASS Z up: standing
    poses[:, 3:66] = 0.15 * np.sin(3 * t[:, None] + np.arange(63))
    trans = np.c_[0.7 * t, 0.05 * np.sin(t), np.full(n, 0.9)]
    np.savez(tmp_path / "seq.npz", poses=poses, trans=trans, mocap_framerate=60.0, betas=np.zeros(10))
    gt_clip = import_file(tmp_path / "seq.npz")[0]
    export_bvh(gt_clip, tmp_path / "seq_pred.bvh")
    res, d = scores(tmp_path, "--pred", tmp_path / "seq_pred.bvh", "--gt", tmp_path / "seq.npz")
    assert res.exit_code == 0, res.output
    assert d["clips"]["seq"]["frames"] == 31
    assert d["mpjpe_mm"] < ROUND_TRIP_MM and d["mpjpe_global_mm"] < ROUND_TRIP_GLOBAL_MM


def test_different_lengths_fail_unless_trimmed(data, tmp_path):
    head, ft, rows = bvh_rows(data / "gt_bvh" / "walk.bvh")
    (tmp_path / "p").mkdir()
    write_bvh_rows(tmp_path / "p" / "walk.bvh", head, ft, rows[:30])
    shutil.copy(data / "gt_bvh" / "turn.bvh", tmp_path / "p")
    res, d = scores(tmp_path, "--pred", tmp_path / "p", "--gt", data / "gt_clips")
    assert res.exit_code == 0, res.output
    assert list(d["clips"]) == ["turn"]
    (f,) = d["failures"]
    assert f["clip"] == "walk" and "30 frames" in f["reason"] and str(T) in f["reason"]
    assert f["cause"] == "length"
    assert "--trim" in res.output

    res, d = scores(tmp_path, "--pred", tmp_path / "p", "--gt", data / "gt_clips", "--trim")
    assert res.exit_code == 0, res.output
    assert d["failures"] == []
    walk = d["clips"]["walk"]
    assert walk["frames"] == 30 and walk["trimmed_from"] == {"pred": 30, "gt": T}
    # the shorter clip is grounded on its own frames, so only root-relative MPJPE stays ~0
    assert walk["mpjpe_mm"] < 1.0
    assert "trimmed_from" not in d["clips"]["turn"]
    assert "trimmed: walk" in res.output


def test_unmatched_names_and_a_bad_file_are_listed(data, tmp_path):
    (tmp_path / "p").mkdir()
    shutil.copy(data / "gt_bvh" / "walk.bvh", tmp_path / "p")
    shutil.copy(data / "gt_bvh" / "walk.bvh", tmp_path / "p" / "jump.bvh")  # no ground truth
    (tmp_path / "p" / "turn.bvh").write_text("HIERARCHY\nROOT Hips\n{\n")  # fails to import
    res, d = scores(tmp_path, "--pred", tmp_path / "p", "--gt", data / "gt_clips")
    assert res.exit_code == 0, res.output
    assert list(d["clips"]) == ["walk"]
    reasons = {f["clip"]: f["reason"] for f in d["failures"]}
    assert set(reasons) == {"jump", "turn"}  # turn once: its file failed, not "no prediction"
    assert reasons["jump"] == "no ground-truth clip of this name"
    assert reasons["turn"].startswith("prediction: could not import: ") and "turn.bvh" in reasons["turn"]
    assert "\n" not in reasons["turn"]
    assert "failed: turn: prediction: could not import" in res.output


def test_a_name_given_by_two_files_is_listed(data, tmp_path):
    for sub in ("a", "b"):
        (tmp_path / "p" / sub).mkdir(parents=True)
        shutil.copy(data / "gt_bvh" / "walk.bvh", tmp_path / "p" / sub)
    shutil.copy(data / "gt_bvh" / "turn.bvh", tmp_path / "p")
    res, d = scores(tmp_path, "--pred", tmp_path / "p", "--gt", data / "gt_bvh")
    assert res.exit_code == 0, res.output
    assert list(d["clips"]) == ["turn"]
    (f,) = d["failures"]
    assert f["clip"] == "walk" and "2 files" in f["reason"] and f["reason"].startswith("prediction:")


def test_nothing_importable_exits_non_zero(tmp_path):
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "x.bvh").write_text("not a bvh")
    res = run_eval("--gt", tmp_path / "g", "--json", tmp_path / "r.json")
    assert res.exit_code != 0 and "no clip could be scored" in res.output
    assert "x.bvh" in json.loads((tmp_path / "r.json").read_text())["failures"][0]["reason"]
    (tmp_path / "empty").mkdir()
    res = run_eval("--pred", tmp_path / "empty", "--gt", tmp_path / "g", "--json", tmp_path / "r.json")
    assert res.exit_code != 0 and "holds no clips and no motion files" in res.output


def test_clips_copied_without_an_index_are_still_a_clip_folder(data, tmp_path):
    # a folder of kinpoly clips without index.json is read as before: named by file stem
    # (importing them would name them by their metadata, "walk" and "turn")
    (tmp_path / "p").mkdir()
    shutil.copy(data / "gt_clips" / "walk.npz", tmp_path / "p" / "renamed.npz")
    shutil.copy(data / "gt_clips" / "turn.npz", tmp_path / "p")
    res, d = scores(tmp_path, "--pred", tmp_path / "p", "--gt", data / "gt_clips")
    assert res.exit_code == 0, res.output
    assert list(d["clips"]) == ["turn"] and d["clips"]["turn"]["mpjpe_global_mm"] == 0.0
    assert {f["clip"] for f in d["failures"]} == {"walk", "renamed"}
