"""The diagnosis helpers of the benchmark scripts (``benchmarks/``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import leg_motion  # noqa: E402
import loop_diagnosis  # noqa: E402
from kinpoly.demo import sample_clips  # noqa: E402
from kinpoly.humanoid.skeleton import body_hinges  # noqa: E402


def _hinges(*bodies):
    return {i for b in bodies for s in "LR" for i in body_hinges(f"{s}_{b}")}


def test_partly_true_proposals_select_the_named_parts():
    mask = loop_diagnosis.truth_mask
    assert mask("policy") is False and mask("open-loop") is False and mask("truth") is True
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
