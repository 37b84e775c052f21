"""Seats for sit takes where no chair fits (a climbing frame): a ``rail`` under the sitter that
the reference body never enters by more than 1 cm, or a measured report that none fits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kinpoly.egocentric.scenes import object_penetration, synthesize_scene
from kinpoly.evaluation import metrics as M
from kinpoly.humanoid.mjcf import rest_qpos
from kinpoly.humanoid.scene import SEAT_KINDS
from kinpoly.humanoid.skeleton import BodyShape, hinge_index
from kinpoly.motion.clip import MotionClip


@pytest.fixture(scope="module")
def playground(shared_data):
    from kinpoly.motion.importers import import_file

    return {n: import_file(shared_data / "interactions" / f"{n}.amc")[0] for n in ("01_06", "01_07")}


def _scored(clip: MotionClip, res) -> bool | None:
    """The evaluation's interaction criterion on the reference clip itself, in its scene."""
    gt = dataclasses.replace(clip, objects=res.tracks)
    return M.interaction_success(gt, M.scan_contacts(gt), gt)


def test_playground_sit_gets_a_rail_it_sits_on(playground):
    """CMU 01_07 (climb, sit, dangle legs, jump down): the seat on the climbing frame cannot be
    a chair (the legs pass below it while climbing) but is a rail under the pelvis/thighs."""
    clip = playground["01_07"]
    res = synthesize_scene(clip)
    assert res.action == "sit" and not res.missing
    rails = [t for t in res.tracks if t.object.kind == "rail"]
    assert len(rails) == 1
    top = rails[0].poses[0, 2] + rails[0].object.dims["radius"]
    assert 1.3 < top < 1.6  # the frame's top, where the pelvis rests at ~1.5 m
    # no contact deeper than 1 cm, with the rail alone and with the whole scene
    assert object_penetration(clip, rails).max() <= 0.005 + 1e-9
    assert res.max_penetration_m <= 0.005 + 1e-9
    # the sitter rests on it: the sit criterion scores (and succeeds) on the reference
    assert _scored(clip, res) is True
    note = next(n for n in res.notes if n.startswith(rails[0].object.name))
    assert "sit frames" in note and "median clearance" in note


def test_playground_sit_without_room_for_a_seat_is_reported(playground):
    """CMU 01_06: the hands and arms grip the frame's top where the pelvis rested, in the later
    climbs; no seat is faked, the scene reports why, and the sit criterion cannot be scored."""
    clip = playground["01_06"]
    res = synthesize_scene(clip)
    assert not any(t.object.kind in SEAT_KINDS for t in res.tracks)
    assert len(res.missing) == 1 and res.missing[0].startswith("seat (sit)")
    assert "entered by the body" in res.missing[0] and "cm" in res.missing[0]
    assert res.report()["missing"] == res.missing
    with pytest.raises(M.MetricError, match="sit needs a chair or rail"):
        _scored(clip, res)


def test_perch_where_the_legs_passed_gets_a_rail():
    """Synthetic: someone stands where the sitter's thighs will be, then sits (on the front
    of a frame): no chair fits under the thighs, a rail under the pelvis does."""
    b = BodyShape()
    thigh = 0.245 * b.height
    sit = rest_qpos(b).copy()
    for s in "LR":
        sit[hinge_index(f"{s}_Hip", "y")] = -np.pi / 2
        sit[hinge_index(f"{s}_Knee", "y")] = np.pi / 2
    sit[2] -= thigh
    sit[0] = -thigh
    stand = rest_qpos(b).copy()
    stand[0] = -thigh + 0.15  # the legs stand under the sitter's thighs
    clip = MotionClip("perch", np.concatenate([np.tile(stand, (40, 1)), np.tile(sit, (60, 1))]), body=b)
    res = synthesize_scene(clip)
    assert res.action == "sit" and res.detected
    assert [t.object.kind for t in res.tracks] == ["rail"]
    assert any("no chair fits" in n for n in res.notes)
    assert object_penetration(clip, res.tracks).max() <= 0.005 + 1e-9
    scan = M.scan_contacts(clip, res.tracks)
    assert scan.touches(M.SIT_BODIES, "rail")
    # the rail stays clear of the standing legs (under the pelvis, behind them)
    rail = res.tracks[0]
    assert rail.poses[0, 0] < stand[0] - 0.05


def test_labelled_clips_are_placed_in_their_scene_for_tracking(tmp_path, playground):
    """`kinpoly ego scenes`: a labelled climb gets the objects `ego build` would place (no
    distractors), an unlabelled clip is copied without objects, and the folder tracks in them."""
    from click.testing import CliRunner

    from kinpoly.cli import main
    from kinpoly.egocentric.scenes import clip_in_scene
    from kinpoly.motion.clip import ClipFolder
    from kinpoly.simulation.evaluate import track
    from kinpoly.simulation.env import EnvConfig
    from kinpoly.simulation.reference import prepare_reference

    clip = dataclasses.replace(playground["01_07"], action="sit")
    placed, rep = clip_in_scene(clip)
    kinds = [t.object.kind for t in placed.objects]
    assert "rail" in kinds and "table" not in kinds and rep["objects"] == kinds
    assert np.array_equal(placed.qpos, clip.qpos)  # the motion is not moved
    bare, rep = clip_in_scene(dataclasses.replace(clip, action=None, name="unlabelled"))
    assert bare.objects == [] and rep["note"] == "no action label"

    src = ClipFolder(tmp_path / "motions", create=True)
    src.add(clip.slice(940, 1000, name="perch"))
    src.add(dataclasses.replace(clip.slice(0, 40, name="other"), action=None))
    res = CliRunner().invoke(main, ["ego", "scenes", "--motions", str(tmp_path / "motions"), "--out", str(tmp_path / "scenes")])
    assert res.exit_code == 0, res.output
    out = ClipFolder(tmp_path / "scenes")
    assert sorted(out) == ["other", "perch"]
    assert out.load("other").objects == [] and out.load("perch").objects
    tr = track(prepare_reference(out.load("perch")), EnvConfig())
    assert len(tr.clip.objects) == len(out.load("perch").objects)
