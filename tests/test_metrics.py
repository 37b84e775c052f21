"""Known-answer tests of the evaluation metrics (kinpoly.evaluation.metrics) and ``kinpoly eval``.

Every expected value is derived by hand in a comment from the geometry of the default body
(height 1.75 m, so its geom scale is 1), never copied from the code's output.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from kinpoly import rotations as rot
from kinpoly.evaluation import metrics as M
from kinpoly.evaluation.commands import eval_command
from kinpoly.humanoid.mjcf import rest_qpos
from kinpoly.humanoid.scene import SceneObject
from kinpoly.humanoid.skeleton import hinge_index, BodyShape
from kinpoly.motion.clip import ClipFolder, MotionClip, ObjectTrack

SHAPE = BodyShape()  # 1.75 m: geom radii are at scale 1
PELVIS_H = SHAPE.pelvis_height()


def hinge(body: str, axis: str) -> int:
    """qpos column of one hinge of ``body``."""
    return hinge_index(body, axis)


def standing(T: int = 10, x=0.0, y=0.0, dz=0.0) -> np.ndarray:
    """(T, 76) rest T-pose, soles on the floor (+dz), root at (x, y); x / y may be (T,) arrays."""
    q = np.tile(rest_qpos(SHAPE), (T, 1))
    q[:, 0] = x
    q[:, 1] = y
    q[:, 2] += dz
    return q


def walking(T: int = 60) -> np.ndarray:
    """A moving, non-trivial motion (root travels and turns, limbs swing)."""
    t = np.arange(T) / 30.0
    q = standing(T, x=0.8 * t, y=0.1 * np.sin(t))
    yaw = 0.3 * t
    q[:, 3], q[:, 6] = np.cos(yaw / 2), np.sin(yaw / 2)
    q[:, 7:] = 0.2 * np.sin(2 * t[:, None] + np.arange(69))
    return q


def clip(qpos, name="c", **kw) -> MotionClip:
    return MotionClip(name=name, qpos=qpos, body=SHAPE, **kw)


def track(obj: SceneObject, T: int, pos=None) -> ObjectTrack:
    """Object poses: constant at the object's placement, or ``pos`` (T, 3) with its rotation."""
    poses = np.tile(np.r_[obj.pos, obj.quat], (T, 1))
    if pos is not None:
        poses[:, :3] = pos
    return ObjectTrack(obj, poses)


# --- pose errors -------------------------------------------------------------------------------
def test_identical_motion_scores_zero():
    gt = clip(walking(), action="locomotion")
    r = M.score_clip(clip(gt.qpos.copy(), action="locomotion"), gt)
    for k in M.POSE_KEYS:
        assert r[k] == pytest.approx(0.0, abs=1e-9), k
    assert max(r["per_joint_mpjpe_mm"].values()) == pytest.approx(0.0, abs=1e-9)
    assert r["success"] and not r["fell"] and r["fall_frame"] is None
    assert r["interaction_success"] is True and r["problems"] == []


def test_rigid_1cm_offset():
    # Every body moves by the same 1 cm: global MPJPE = 10 mm; root-relative positions, all
    # rotations and all velocities / accelerations are unchanged.
    gt = clip(walking())
    q = gt.qpos.copy()
    q[:, 0] += 0.01
    r = M.score_clip(clip(q), gt)
    assert r["mpjpe_global_mm"] == pytest.approx(10.0, abs=1e-9)
    assert r["mpjpe_mm"] == pytest.approx(0.0, abs=1e-9)
    assert r["root_trans_err_m"] == pytest.approx(0.01, abs=1e-12)
    assert r["head_trans_err_m"] == pytest.approx(0.01, abs=1e-12)
    for k in ("root_rot_err", "head_rot_err", "accel_error", "velocity_error"):
        assert r[k] == pytest.approx(0.0, abs=1e-9), k


def test_head_yaw_90_degrees():
    # Head turned 90 deg about z: I - Rz(90) = [[1, 1, 0], [-1, 1, 0], [0, 0, 0]], whose
    # Frobenius norm is sqrt(1 + 1 + 1 + 1) = 2 (= 2 sqrt(2) sin(45 deg)). The root is untouched.
    gt = clip(standing())
    q = gt.qpos.copy()
    q[:, hinge("Head", "z")] = np.pi / 2
    r = M.score_clip(clip(q), gt)
    assert r["head_rot_err"] == pytest.approx(2.0, abs=1e-12)
    assert r["root_rot_err"] == pytest.approx(0.0, abs=1e-12)
    assert r["mpjpe_mm"] == pytest.approx(0.0, abs=1e-9)  # the Head joint does not move itself


def test_root_yaw_180_degrees_is_the_maximum():
    # I - Rz(180) = diag(2, 2, 0): norm sqrt(8) = 2 sqrt(2), the largest possible value.
    q = standing(5)
    q2 = q.copy()
    q2[:, 3:7] = [0, 0, 0, 1]
    assert M.orientation_error(rot.quat_to_matrix(q2[:, 3:7]), rot.quat_to_matrix(q[:, 3:7])) == \
        pytest.approx(2 * math.sqrt(2))


def test_velocity_and_acceleration_errors():
    # Prediction drifts at 2 mm/frame in x: velocity error 2 mm/frame, acceleration error 0.
    gt = np.zeros((20, 24, 3))
    pred = gt.copy()
    pred[..., 0] = 0.002 * np.arange(20)[:, None]
    assert M.velocity_error(pred, gt) == pytest.approx(2.0)
    assert M.acceleration_error(pred, gt) == pytest.approx(0.0)
    # One body jumps by 3 mm at frame 10 (a spike): second differences at frames 9, 10, 11 are
    # +3, -6, +3 mm for 1 of 24 bodies over 18 inner frames -> (3 + 6 + 3) / (18 * 24) mm/frame^2.
    pred = gt.copy()
    pred[10, 5, 2] = 0.003
    assert M.acceleration_error(pred, gt) == pytest.approx(12.0 / (18 * 24))
    # velocity: differences at pairs 9 and 10 are 3 mm each -> 6 / (19 * 24)
    assert M.velocity_error(pred, gt) == pytest.approx(6.0 / (19 * 24))


def test_fall_by_distance_and_by_simulation_flag():
    gt = clip(standing(10))
    q = gt.qpos.copy()
    q[6:, 0] += 0.6  # every body 0.6 m away from frame 6: mean distance 0.6 > 0.5
    r = M.score_clip(clip(q, action="locomotion"), gt)
    assert r["fell"] and r["fall_frame"] == 6 and not r["success"]
    assert r["interaction_success"] is False  # locomotion succeeds only without a fall
    q[6:, 0] -= 0.2  # 0.4 m: not a fall
    assert M.score_clip(clip(q), gt)["fell"] is False
    failed = clip(gt.qpos[:4].copy(), meta={"failed": True, "fail_frame": 3})
    r = M.score_clip(failed, gt)  # a failed simulation that stopped early is scored on its frames
    assert r["fell"] and r["fall_frame"] == 3 and r["frames"] == 4
    assert r["mpjpe_mm"] == pytest.approx(0.0, abs=1e-9)


def test_bad_pairs_are_refused_with_the_clip_name():
    gt = clip(standing(10), name="walk-01")
    with pytest.raises(M.MetricError, match="walk-01.*8 frames.*10"):
        M.score_clip(clip(standing(8), name="walk-01"), gt)
    with pytest.raises(M.MetricError, match="fps"):
        M.score_clip(clip(standing(10), name="walk-01", fps=60.0), gt)


# --- foot skate --------------------------------------------------------------------------------
def test_skate_of_sliding_feet():
    T = 31
    v = 0.01  # m/frame
    # Standing body sliding at 1 cm/frame: both toes at their rest height (h = 0, weight
    # 2 - 2^0 = 1), in contact in all 30 pairs -> 10 mm/frame.
    slide = clip(standing(T, x=v * np.arange(T)))
    assert M.clip_skate(slide) == pytest.approx(10.0, rel=1e-9)
    # Raised by H/2: weight 2 - 2^(1/2) -> 10 * (2 - sqrt 2) = 5.858 mm/frame.
    half = clip(standing(T, x=v * np.arange(T), dz=M.FOOT_CONTACT_HEIGHT / 2))
    assert M.clip_skate(half) == pytest.approx(10.0 * (2 - math.sqrt(2)), rel=1e-9)
    # Raised above H: never in contact.
    assert M.clip_skate(clip(standing(T, x=v * np.arange(T), dz=0.04))) == 0.0
    # Sliding only during the first 10 of 30 pairs: 10 mm * 10 / 30.
    x = v * np.minimum(np.arange(T), 10)
    assert M.clip_skate(clip(standing(T, x=x))) == pytest.approx(10.0 / 3, rel=1e-9)
    # Standing still: no skate.
    assert M.clip_skate(clip(standing(T))) == 0.0


def test_skate_counts_pairs_with_both_frames_below_h():
    # One toe slides 3 mm/frame on the floor, the other hovers; frame 2 of the first toe is at
    # 5 cm (> H) so pairs (1, 2) and (2, 3) do not count: 3 mm * 2 counted pairs / (4 pairs * 2 toes).
    toe = np.zeros((5, 2, 3))
    toe[:, 0, 0] = 0.003 * np.arange(5)
    toe[2, 0, 2] = 0.05
    toe[:, 1, 2] = 0.1
    assert M.foot_skate(toe) == pytest.approx(3.0 * 2 / 8)


# --- penetration -------------------------------------------------------------------------------
def one_leg_stance(T: int, depth: float) -> np.ndarray:
    """Left thigh raised forward (hip pitch -90 deg: the leg is horizontal at hip height, far
    from the floor); the body lowered by ``depth`` so the right foot sinks into the floor."""
    q = standing(T, dz=-depth)
    q[:, hinge("L_Hip", "y")] = -np.pi / 2
    return q


def test_penetration_of_a_foot_pushed_into_the_floor():
    # Standing, the soles of the right Ankle box and Toe box lie exactly on the floor. Lowered
    # by 2 cm, each box's 4 bottom corners are 2 cm deep, and MuJoCo's box-plane collision
    # reports one contact per corner below the plane: 8 contacts of dist -0.02, each counting
    # max(0, 0.02 - 0.005) = 15 mm -> 120 mm. The only other geom near the floor is the right
    # shank capsule (radius 0.05 m, ending at the ankle joint, 0.039 * 1.75 = 0.06825 m above
    # the sole): its bottom is at 0.06825 - 0.02 - 0.05 = -1.75 mm, within the 5 mm margin -> 0.
    pen = M.scan_contacts(clip(one_leg_stance(1, 0.02))).penetration
    assert pen[0] * 1000 == pytest.approx(120.0, abs=1e-6)
    # 1 cm deep: 8 * (10 - 5) = 40 mm (the shank is 8.25 mm above the floor).
    assert M.penetration(M.scan_contacts(clip(one_leg_stance(1, 0.01)))) == pytest.approx(40.0, abs=1e-6)
    # 3 mm deep: within the margin -> 0.
    assert M.penetration(M.scan_contacts(clip(one_leg_stance(1, 0.003)))) == pytest.approx(0.0, abs=1e-9)
    # Mean over frames: one frame at 120 mm, one on the floor (0) -> 60 mm.
    q = np.concatenate([one_leg_stance(1, 0.02), one_leg_stance(1, 0.0)])
    assert M.score_physical(clip(q))["penetration_mm"] == pytest.approx(60.0, abs=1e-6)


def test_penetration_ignores_object_floor_contacts():
    # A box resting 5 cm into the floor is not the body's penetration.
    box = SceneObject("box", pos=(2.0, 0.0, 0.175))
    c = clip(standing(3), objects=[track(box, 3, pos=[2.0, 0.0, 0.125])])
    assert M.penetration(M.scan_contacts(c)) == pytest.approx(0.0, abs=1e-9)


# --- interaction success -------------------------------------------------------------------------
def seated(T: int, pelvis_z: float, x: float = 0.05) -> np.ndarray:
    """Thighs forward (hip pitch -90 deg), shanks down (knee +90 deg), root at (x, 0, pelvis_z)."""
    q = standing(T, x=x)
    q[:, 2] = pelvis_z
    for side in "LR":
        q[:, hinge(f"{side}_Hip", "y")] = -np.pi / 2
        q[:, hinge(f"{side}_Knee", "y")] = np.pi / 2
    return q


def test_sit():
    # Chair at the origin: seat top at 0.45 m, seat spans x, y in [-0.225, 0.225]. The pelvis
    # capsule (radius 0.085) hangs 0.0875 * 0.5 = 0.044 m below the root: root at 0.55 m puts
    # its bottom at 0.421 m, inside the seat -> touch. Root at 0.70 m: bottom at 0.571 m and the
    # thighs' bottoms at 0.70 - 0.0875 - 0.065 = 0.5475 m, above the seat -> no touch.
    chair = SceneObject("chair")
    T = 10
    sit = clip(seated(T, 0.55), action="sit", objects=[track(chair, T)])
    hover = clip(seated(T, 0.70), action="sit", objects=[track(chair, T)])
    assert M.score_clip(sit, sit)["interaction_success"] is True
    assert M.score_clip(hover, hover)["interaction_success"] is False
    assert M.score_clip(hover)["interaction_success"] is False  # no ground truth needed


def test_sit_on_rail():
    """A ``rail`` (a seat bar: a climbing frame's top rail) counts as a seat like a chair; a
    rung (``bar``) does not."""
    T = 10
    rail = SceneObject("rail", pos=(0.05, 0.0, 0.41))  # top at 0.44 m, under the pelvis
    sit = clip(seated(T, 0.55), action="sit", objects=[track(rail, T)])
    hover = clip(seated(T, 0.70), action="sit", objects=[track(rail, T)])
    assert M.score_clip(sit, sit)["interaction_success"] is True
    assert M.score_clip(hover, hover)["interaction_success"] is False
    rung = clip(seated(T, 0.55), action="sit", objects=[track(SceneObject("bar", pos=(0.05, 0.0, 0.41)), T)])
    with pytest.raises(M.MetricError, match="sit needs a chair or rail"):
        M.interaction_success(rung, M.scan_contacts(rung))


def test_push():
    box = SceneObject("box", pos=(1.0, 0.0, 0.175))
    T = 10
    moved = np.c_[np.linspace(1.0, 1.3, T), np.zeros(T), np.full(T, 0.175)]
    nudged = np.c_[np.linspace(1.0, 1.05, T), np.zeros(T), np.full(T, 0.175)]
    push = clip(standing(T), action="push", objects=[track(box, T, moved)])
    weak = clip(standing(T), action="push", objects=[track(box, T, nudged)])
    assert M.score_clip(push, push)["interaction_success"] is True  # 0.3 m > 0.1 m
    assert M.score_clip(weak, weak)["interaction_success"] is False  # 0.05 m
    # A successful push by a prediction that falls is not a success.
    q = push.qpos.copy()
    q[:, 0] += 1.0
    assert M.score_clip(clip(q, action="push", objects=push.objects), push)["interaction_success"] is False


def test_avoid():
    # Can of radius 0.15 m at x = 2. The T-pose arm reaches (0.045 + 0.07 + 0.186 + 0.146 +
    # 0.06) * 1.75 + 0.105 = 0.99 m sideways, so walking along y = 1.5 clears it and y = 0 walks
    # through it.
    can = SceneObject("can", pos=(2.0, 0.0, 0.0))
    T = 40
    x = np.linspace(0.0, 4.0, T)
    clear = clip(standing(T, x=x, y=1.5), action="avoid", objects=[track(can, T)])
    through = clip(standing(T, x=x, y=0.0), action="avoid", objects=[track(can, T)])
    assert M.score_clip(clear, clear)["interaction_success"] is True
    assert M.score_clip(through, through)["interaction_success"] is False
    # No contact but ending 1 m from where the ground truth ends (at most 0.4 m off before the
    # last frames, so no fall): the final head is > 0.5 m away -> failure.
    y = 1.5 + np.r_[np.zeros(T - 3), 0.2, 0.4, 1.0]
    drift = clip(standing(T, x=x, y=y), action="avoid", objects=[track(can, T)])
    r = M.score_clip(drift, clear)
    assert r["fall_frame"] == T - 1 and r["interaction_success"] is False
    y[-1] = 1.5 + 0.45
    assert M.score_clip(clip(standing(T, x=x, y=y), action="avoid", objects=[track(can, T)]),
                        clear)["interaction_success"] is True
    # The head criterion alone: the last frame 0.45 m behind (mean body distance 0.45 m, no
    # fall) with the head turned 180 deg, which moves the eyes (0.055 * 1.75 = 0.096 m ahead of
    # the Head joint) 0.19 m further back: the final eyes are 0.64 m off -> failure.
    q = clear.qpos.copy()
    q[-1, 0] -= 0.45
    q[-1, hinge("Head", "z")] = np.pi
    r = M.score_clip(clip(q, action="avoid", objects=[track(can, T)]), clear)
    assert not r["fell"] and r["interaction_success"] is False


def test_step():
    # Step box at x = 1 spans x in [0.7, 1.3], height 0.2 m.
    step = SceneObject("step", pos=(1.0, 0.0, 0.0))
    T = 10
    on = np.r_[np.zeros(5), np.ones(5)]
    # Up: standing on the step with soles 1 cm into it (root +0.19 m > 0.1 m) -> success.
    up = clip(standing(T, x=on, dz=0.19 * on), action="step", objects=[track(step, T)])
    assert M.score_clip(up, up)["interaction_success"] is True
    # Hovering 5 cm above the step: rises 0.25 m but never touches it -> failure.
    hover = clip(standing(T, x=on, dz=0.25 * on), action="step", objects=[track(step, T)])
    assert M.score_clip(hover, hover)["interaction_success"] is False
    # Toes pushed into the step's side (toe front at 0.6 + 0.075 * 1.75 + 0.05 = 0.78 m > 0.7 m)
    # without rising -> failure.
    kick = clip(standing(T, x=0.6), action="step", objects=[track(step, T)])
    assert M.scan_contacts(kick).touches(M.FOOT_BODIES, "step")
    assert M.score_clip(kick, kick)["interaction_success"] is False


def test_missing_object_is_a_problem_not_a_crash():
    c = clip(standing(5), name="sit-07", action="sit")
    r = M.score_clip(c, c)
    assert r["interaction_success"] is None and r["mpjpe_mm"] == 0.0
    assert any("sit-07" in p and "chair" in p for p in r["problems"])


def test_static_scene_of_a_kinematic_prediction_comes_from_ground_truth():
    chair = SceneObject("chair")
    gt = clip(seated(6, 0.55), action="sit", objects=[track(chair, 6)])
    pred = clip(seated(6, 0.55), action="sit")  # no objects of its own
    assert M.score_clip(pred, gt)["interaction_success"] is True


# --- rotation properties the metrics rely on -----------------------------------------------------
quats = st.lists(st.floats(-1, 1, allow_nan=False), min_size=4, max_size=4).filter(
    lambda v: np.linalg.norm(v) > 0.1).map(lambda v: np.asarray(v) / np.linalg.norm(v))


@settings(max_examples=200, deadline=None)
@given(quats)
def test_quat_matrix_round_trip(q):
    m = rot.quat_to_matrix(q)
    assert np.allclose(m @ m.T, np.eye(3), atol=1e-12) and np.linalg.det(m) == pytest.approx(1.0)
    q2 = rot.matrix_to_quat(m)
    assert np.allclose(q2, q, atol=1e-9) or np.allclose(q2, -q, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(quats, quats)
def test_frobenius_error_properties(qa, qb):
    a, b = rot.quat_to_matrix(qa), rot.quat_to_matrix(qb)
    e = M.rotation_error(a, b)
    assert M.rotation_error(b, a) == pytest.approx(e, abs=1e-12)
    assert 0.0 <= e <= 2 * math.sqrt(2) + 1e-12
    assert M.rotation_error(a, a) == pytest.approx(0.0, abs=1e-12)
    theta = 2 * math.acos(min(1.0, abs(float(np.dot(qa, qb)))))  # angle of a b^T
    assert e == pytest.approx(2 * math.sqrt(2) * math.sin(theta / 2), abs=1e-6)
    if theta > 1e-3:
        assert e > 0


# --- speed ---------------------------------------------------------------------------------------
def test_ten_minutes_score_in_under_ten_seconds():
    T = 18000  # 10 min at 30 Hz
    gt = clip(walking(T), action="locomotion")
    q = gt.qpos.copy()
    q[:, 7:] += np.random.default_rng(0).normal(0, 0.05, (T, 69))
    pred = clip(q, action="locomotion")
    t0 = time.perf_counter()
    r = M.score_clip(pred, gt)  # FK of both clips, contacts of all 18000 frames included
    elapsed = time.perf_counter() - t0
    print(f"scored {T} frames in {elapsed:.2f} s")
    assert r["penetration_mm"] >= 0 and r["mpjpe_mm"] > 0
    assert elapsed < 10.0


# --- the command -----------------------------------------------------------------------------------
def make_folder(path, clips):
    folder = ClipFolder(path, create=True)
    for c in clips:
        folder.add(c, write_index=False)
    folder.write_index()
    return str(path)


def run_eval(*args):
    return CliRunner().invoke(eval_command, list(args), catch_exceptions=False)


def test_eval_command_reports(tmp_path):
    box = SceneObject("box", pos=(1.0, 0.0, 0.175))
    moved = np.c_[np.linspace(1.0, 1.3, 60), np.zeros(60), np.full(60, 0.175)]
    gts = [clip(walking(), name="walk-01", action="locomotion"),
           clip(standing(60), name="push-01", action="push", objects=[track(box, 60, moved)])]
    preds = []
    for g in gts:
        q = g.qpos.copy()
        q[:, 0] += 0.01
        preds.append(clip(q, name=g.name, action=g.action, objects=g.objects))
    gt_dir, pred_dir = make_folder(tmp_path / "gt", gts), make_folder(tmp_path / "pred", preds)
    out = tmp_path / "res.json"
    res = run_eval("--pred", pred_dir, "--gt", gt_dir, "--json", str(out), "--md", str(tmp_path / "r.md"),
                   "--plots", str(tmp_path / "plots"))
    assert res.exit_code == 0, res.output
    assert "MPJPE" in res.output
    data = json.loads(out.read_text())
    for k in ("mpjpe_mm", "mpjpe_global_mm", "root_rot_err", "root_trans_err_m", "head_rot_err",
              "head_trans_err_m", "accel_error", "velocity_error", "skate_mm", "penetration_mm",
              "success_rate", "interaction_success", "clips", "failures"):
        assert k in data, k
    assert data["mpjpe_global_mm"] == pytest.approx(10.0)
    assert data["mpjpe_mm"] == pytest.approx(0.0, abs=1e-9)
    assert data["success_rate"] == 1.0
    assert data["interaction_success"] == {"push": 1.0, "locomotion": 1.0}
    assert set(data["clips"]) == {"walk-01", "push-01"} and data["failures"] == []
    assert data["gt_penetration_mm"] is not None
    assert "| walk-01" in (tmp_path / "r.md").read_text()
    for png in ("per_joint_error.png", "worst_clips_error.png", "success_per_action.png"):
        assert (tmp_path / "plots" / png).read_bytes()[:4] == b"\x89PNG"


def test_eval_command_lists_bad_clips_and_scores_the_rest(tmp_path):
    T = 10
    gts = [clip(standing(T), name=n) for n in ("ok", "short", "nan", "only-gt")]
    gts.append(clip(standing(T), name="sit-01", action="sit"))  # a sit with no chair
    nan = clip(standing(T), name="nan")
    nan.qpos[3, 5] = np.nan
    preds = [clip(standing(T), name="ok"), clip(standing(T - 2), name="short"), nan,
             clip(standing(T), name="only-pred"), clip(standing(T), name="sit-01", action="sit")]
    gt_dir, pred_dir = make_folder(tmp_path / "gt", gts), make_folder(tmp_path / "pred", preds)
    out = tmp_path / "res.json"
    res = run_eval("--pred", pred_dir, "--gt", gt_dir, "--json", str(out))
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    reasons = {f["clip"]: f["reason"] for f in data["failures"]}
    assert set(data["clips"]) == {"ok", "sit-01"}
    assert "8 frames" in reasons["short"] and "10" in reasons["short"]
    assert "NaN" in reasons["nan"] and "prediction" in reasons["nan"]
    assert "no prediction" in reasons["only-gt"]
    assert "no ground-truth" in reasons["only-pred"]
    assert "chair" in reasons["sit-01"]
    assert data["clips"]["sit-01"]["interaction_success"] is None
    assert data["clips"]["sit-01"]["mpjpe_mm"] == 0.0
    assert "failed: short" in res.output


def test_eval_command_fails_when_nothing_scores(tmp_path):
    gt_dir = make_folder(tmp_path / "gt", [clip(standing(10), name="a")])
    pred_dir = make_folder(tmp_path / "pred", [clip(standing(7), name="a"), clip(standing(7), name="b")])
    out = tmp_path / "res.json"
    res = run_eval("--pred", pred_dir, "--gt", gt_dir, "--json", str(out))
    assert res.exit_code != 0
    data = json.loads(out.read_text())
    assert data["clips"] == {} and len(data["failures"]) == 2


def test_eval_command_ground_truth_alone(tmp_path):
    T = 31
    gt_dir = make_folder(tmp_path / "gt", [clip(standing(T, x=0.01 * np.arange(T)), name="slide"),
                                           clip(one_leg_stance(T, 0.02), name="sunk")])
    out = tmp_path / "res.json"
    res = run_eval("--gt", gt_dir, "--json", str(out))
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["mpjpe_mm"] is None and data["success_rate"] is None
    assert data["clips"]["slide"]["skate_mm"] == pytest.approx(10.0)
    assert data["clips"]["sunk"]["penetration_mm"] == pytest.approx(120.0)
    assert data["penetration_mm"] == pytest.approx(60.0)
