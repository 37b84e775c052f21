"""The diagnosis helpers of the benchmark scripts (``benchmarks/``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import com_support  # noqa: E402
import leg_motion  # noqa: E402
import loop_diagnosis  # noqa: E402
import residual_budget  # noqa: E402
from kinpoly.demo import sample_clips  # noqa: E402
from kinpoly.humanoid.skeleton import body_hinges  # noqa: E402


def _hinges(*bodies):
    return {i for b in bodies for s in "LR" for i in body_hinges(f"{s}_{b}")}


def test_partly_true_proposals_select_the_named_parts():
    mask = loop_diagnosis.truth_mask
    assert mask("policy") is False and mask("truth") is True
    assert mask("open-loop") is True  # the policy's open-loop motion takes the truth's place
    assert set(np.flatnonzero(mask("true-root"))) == set(range(7))
    assert set(np.flatnonzero(mask("true-hips-knees"))) == _hinges("Hip", "Knee")
    assert set(np.flatnonzero(mask("true-knees"))) == _hinges("Knee")
    legs = _hinges("Hip", "Knee", "Ankle", "Toe")
    assert set(np.flatnonzero(mask("true-legs"))) == legs
    assert set(np.flatnonzero(mask("true-upper"))) == set(range(7, 76)) - legs  # neither root nor legs
    assert set(loop_diagnosis.PARTS) <= set(loop_diagnosis.PROPOSALS)


def test_leg_stats_see_a_stiff_legged_copy_of_a_walk():
    clip = [c for c in sample_clips() if c.name.startswith("walk")][0]
    walk = leg_motion.leg_stats(clip.qpos, clip.body)
    stiff = clip.qpos.copy()
    stiff[:, leg_motion.KNEE_FLEXION] = stiff[:, leg_motion.KNEE_FLEXION].mean(0)  # knees frozen
    frozen = leg_motion.leg_stats(stiff, clip.body)
    assert walk["knee_flexion_std"] > 0.1 and frozen["knee_flexion_std"] < 1e-9
    assert frozen["toe_swing_m"] < walk["toe_swing_m"]


def test_centre_of_mass_to_a_foot():
    """In the (left-right symmetric) rest pose the centre of mass lies on the mid-plane, half
    the ankles' spacing from either foot's axis, wherever the body stands; the right leg
    raised sideways takes it away from the left foot."""
    from kinpoly.humanoid.kinematics import forward_kinematics
    from kinpoly.humanoid.mjcf import rest_qpos
    from kinpoly.humanoid.skeleton import BODY_INDEX, BodyShape, hinge_index
    from kinpoly.motion.clip import MotionClip

    body = BodyShape()
    q = np.tile(rest_qpos(body), (2, 1))
    q[1, :2] += [1.0, -0.5]  # the same pose elsewhere
    clip = MotionClip(name="rest", qpos=q, fps=30.0, body=body)
    ankles = forward_kinematics(q[:1], body).positions[0, [BODY_INDEX["L_Ankle"], BODY_INDEX["R_Ankle"]]]
    half = abs(ankles[0, 1] - ankles[1, 1]) / 2
    for foot in "LR":
        for row in com_support.com_to_foot(clip, foot, range(2)):
            assert abs(row["com_to_foot_m"] - half) < 0.003, (foot, row)
    q[1, hinge_index("R_Hip", "x")] = -1.0  # the right leg 57 degrees out to the side
    raised = com_support.com_to_foot(MotionClip(name="kick", qpos=q, fps=30.0, body=body), "L", range(2))
    assert raised[1]["com_to_foot_m"] > half + 0.02


def test_the_feed_forward_leaves_a_standing_bodys_weight_on_its_feet_and_a_floating_ones_on_the_root():
    """Standing at rest the inverse dynamics puts the body's weight on the feet; the same pose
    20 cm off the floor has no foot in contact and leaves its whole weight on the root (what a
    residual force would have to supply)."""
    from kinpoly.humanoid.mjcf import build_model, rest_qpos
    from kinpoly.humanoid.skeleton import BodyShape
    from kinpoly.motion.clip import MotionClip
    from kinpoly.simulation.model import body_weight_n
    from kinpoly.simulation.reference import prepare_reference

    body = BodyShape()
    weight = body_weight_n(body)
    assert abs(weight - build_model(body).body_mass.sum() * 9.81) < 1e-6 * weight
    q = np.tile(rest_qpos(body), (10, 1))
    standing = prepare_reference(MotionClip(name="stand", qpos=q, fps=30.0, body=body))
    assert residual_budget.feedforward_root_share(standing) < 0.01 * weight
    q[:, 2] += 0.2
    floating = prepare_reference(MotionClip(name="float", qpos=q, fps=30.0, body=body))
    assert abs(residual_budget.feedforward_root_share(floating) - weight) < 0.01 * weight


def test_unseen_mocap_rows_report_the_import_or_its_error(tmp_path):
    import unseen_mocap
    from test_unseen_mocap import walk_bvh

    row, clip = unseen_mocap.import_row(walk_bvh(tmp_path / "walk.bvh"), "fit")
    assert clip is not None and row["bodies_mapped"] == "23/24" and row["upright"] == 1.0  # no middle spine joint
    assert row["retarget_error_mm"] < 10.0 and 0.0 <= row["sole_at_start_cm"] < 5.0
    bad = tmp_path / "bad.bvh"
    bad.write_text("HIERARCHY\nROOT a\n{\n")
    row, clip = unseen_mocap.import_row(bad, "fit")
    assert clip is None and "bad.bvh" in row["error"]
