"""SMPL-family parameters (AMASS npz, EgoEgo pickles) -> humanoid clips by rotation transfer.

The humanoid has SMPL's topology, so no SMPL model files are needed: each SMPL joint's local
axis-angle rotation is carried over to the same-named body. SMPL's canonical body is Y up,
facing +Z, with +X to its left; ours is Z up, facing +X, +Y left, so a local rotation
``R_smpl`` becomes ``C R_smpl C^T`` with the axis change ``C`` below, and the root's world
orientation (AMASS worlds are already Z up) becomes ``R_root C^T``.

AMASS ``trans`` is not the pelvis position: SMPL adds the rest pelvis joint J0(betas). Without
the model we use the neutral body's J0 (about 0.22 m along the model's -Y axis, i.e. the
world's -Y in AMASS) and then, as for every import, bend up toes whose tips dig below the
feet (:func:`kinpoly.motion.retarget.flex_toes`) and put the lowest sole point on the floor.
With the user's own SMPL model file (``--smpl-model``), J0 and the body come from the clip's
``betas`` exactly (:mod:`kinpoly.humanoid.smpl_body`).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from .. import rotations as rot
from ..humanoid.kinematics import hinge_angles, local_rotations
from ..humanoid.skeleton import BODY_NAMES, NUM_BODIES, PARENTS, SMPL_NAMES, BodyShape
from .clip import MotionClip
from .source import MAX_FPS, MIN_FPS, MotionFormatError

C_SMPL_TO_OURS = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
SMPL_NEUTRAL_J0 = np.array([0.0012, -0.2233, 0.0282])  # rest pelvis joint, model axes (m)
_SMPL_INDEX = {n: i for i, n in enumerate(SMPL_NAMES)}


def smpl_to_clip(name: str, root_orient: np.ndarray, body_pose: np.ndarray, trans: np.ndarray,
                 fps: float, *, source: str = "", license: str = "", shape: BodyShape | None = None,
                 target_fps: float = 30.0, ground: bool = True,
                 pelvis_offset: np.ndarray = SMPL_NEUTRAL_J0) -> MotionClip:
    """Clip from SMPL parameters: root_orient (T,3) axis-angle, body_pose (T, 3*K) axis-angle
    for SMPL joints 1..K in SMPL order (K = 21 for SMPL-H/SMPL-X bodies, 23 for SMPL), trans (T,3).
    """
    from .retarget import ground as put_on_floor  # shared with the retargeted formats

    where = source or name
    try:
        root_orient, body_pose, trans = (np.asarray(a, dtype=np.float64) for a in (root_orient, body_pose, trans))
    except (TypeError, ValueError) as e:
        raise MotionFormatError(f"{where}: SMPL parameters are not numeric arrays ({e})") from None
    T = root_orient.size // 3
    shapes = {"root_orient": root_orient.shape, "body_pose": body_pose.shape, "trans": trans.shape}
    if (T == 0 or root_orient.size != 3 * T or trans.size != 3 * T or body_pose.size == 0
            or body_pose.size % (3 * T)):
        raise MotionFormatError(f"{where}: SMPL parameters must be root_orient (T, 3), body_pose "
                                f"(T, 3*K) and trans (T, 3) with T >= 1 frames, got {shapes}")
    root_orient, body_pose, trans = root_orient.reshape(T, 3), body_pose.reshape(T, -1, 3), trans.reshape(T, 3)
    for what, arr in (("root_orient", root_orient), ("body_pose", body_pose), ("trans", trans)):
        if not np.isfinite(arr).all():
            raise MotionFormatError(f"{where}: {what} contains NaN/inf")
    K = min(body_pose.shape[1], NUM_BODIES - 1)
    local_smpl = np.tile(np.eye(3), (T, NUM_BODIES, 1, 1))
    local_smpl[:, 1:K + 1] = rot.rotvec_to_matrix(body_pose[:, :K])
    C = C_SMPL_TO_OURS
    local = C @ local_smpl @ C.T  # (T, 24, 3, 3) in SMPL order
    root = rot.rotvec_to_matrix(root_orient) @ C.T
    order = [_SMPL_INDEX[n] for n in BODY_NAMES]
    local = local[:, order]
    pelvis = trans + np.asarray(pelvis_offset)
    # resample: root linearly, rotations by slerp
    q = rot.matrix_to_quat(np.concatenate([root[:, None], local[:, 1:]], axis=1))
    q = rot.quat_continuous(q, axis=0)
    if abs(fps - target_fps) > 1e-6:
        q = rot.resample_quats(q, fps, target_fps)
        pelvis = rot.resample_linear(pelvis, fps, target_fps)
    hinges = hinge_angles(rot.quat_to_matrix(q[:, 1:]))
    qpos = np.concatenate([pelvis, rot.quat_continuous(q[:, 0]), hinges], axis=1)
    shape = shape or BodyShape()
    if ground:
        qpos = put_on_floor(qpos, shape)  # toes bent where they dig in, then on the floor
    assert len(PARENTS) == NUM_BODIES
    return MotionClip(name=name, qpos=qpos, fps=target_fps, body=shape, source=source,
                      license=license, meta={"source_fps": fps, "source_frames": T,
                                             "source_format": "smpl", "transfer": "rotation"})


def clip_to_smpl(clip: MotionClip, pelvis_offset: np.ndarray = SMPL_NEUTRAL_J0) -> dict[str, np.ndarray]:
    """The inverse of :func:`smpl_to_clip`: a clip's motion as SMPL parameters in AMASS's
    layout, ``poses`` (T, 72: root orientation, then the 23 body joints in SMPL order,
    axis-angle), ``trans`` (T, 3: the pelvis less ``pelvis_offset``, the neutral body's rest
    pelvis joint) and ``mocap_framerate``; ``betas`` are zeros and ``gender`` is ``neutral``,
    since our body is not an SMPL shape. Rotations are exact; an SMPL body posed with them
    has SMPL's own limb lengths, so its joint positions differ from the clip's by the
    difference in body size."""
    C = C_SMPL_TO_OURS
    local = local_rotations(clip.qpos)  # (T, 24, 3, 3), our order; root: world orientation
    smpl = np.empty_like(local)
    smpl[:, [_SMPL_INDEX[n] for n in BODY_NAMES]] = local
    smpl[:, 1:] = C.T @ smpl[:, 1:] @ C
    smpl[:, 0] = smpl[:, 0] @ C
    poses = rot.matrix_to_rotvec(smpl).reshape(clip.num_frames, -1)
    return {"poses": poses, "trans": clip.qpos[:, :3] - np.asarray(pelvis_offset),
            "mocap_framerate": np.float64(clip.fps), "betas": np.zeros(10), "gender": np.array("neutral")}


def read_amass_npz(path: str | Path, *, license: str = "", target_fps: float = 30.0,
                   smpl_model: str | Path | None = None) -> MotionClip:
    """AMASS-style npz: ``poses`` (T, 72 | 156 | 165; or AMASS SMPL-X's ``root_orient`` (T, 3)
    and ``pose_body`` (T, 63)), ``trans`` (T, 3), ``mocap_framerate`` (or ``mocap_frame_rate``),
    optional ``betas``/``gender``. Hand/face joints are ignored.

    With the user's own ``smpl_model`` file, the body is built from the clip's ``betas`` and the
    pelvis from the model's exact rest pelvis joint; without it, the default body and the
    neutral pelvis offset are used."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as e:  # zip/format errors come in many types
        raise MotionFormatError(f"{path}: unreadable npz ({type(e).__name__}: {e})") from None
    if "poses" not in data and {"root_orient", "pose_body"} <= set(data):  # AMASS SMPL-X "G"
        root, body = data["root_orient"], data["pose_body"]
        if root.ndim != 2 or body.ndim != 2 or len(root) != len(body):
            raise MotionFormatError(f"{path}: root_orient {root.shape} and pose_body {body.shape} must "
                                    f"be (T, 3) and (T, 63)")
        data["poses"] = np.concatenate([root, body], axis=1)
    missing = [k for k in ("poses", "trans") if k not in data]
    if missing:
        raise MotionFormatError(f"{path}: not an AMASS npz, missing {', '.join(missing)}")
    fps_key = next((k for k in ("mocap_framerate", "mocap_frame_rate", "fps") if k in data), None)
    if fps_key is None:
        raise MotionFormatError(f"{path}: no frame rate (mocap_framerate) in the npz")
    fps = _floats(path, fps_key, data[fps_key])
    if fps.size != 1:
        raise MotionFormatError(f"{path}: {fps_key} must be one number, got shape {fps.shape}")
    fps = float(fps.reshape(()))
    poses = _floats(path, "poses", data["poses"])
    if poses.ndim == 3 and poses.shape[2] == 3:  # (T, J, 3) axis-angles
        poses = poses.reshape(len(poses), -1)
    if poses.ndim != 2 or poses.shape[1] < 66 or poses.shape[1] % 3 or len(poses) == 0:
        raise MotionFormatError(f"{path}: poses must be (T, 3*J) with T >= 1 and J >= 22, got {poses.shape}")
    if np.ndim(data["trans"]) != 2 or len(poses) != len(data["trans"]):
        raise MotionFormatError(f"{path}: {len(poses)} poses but translations of shape {np.shape(data['trans'])}")
    if not (MIN_FPS <= fps <= MAX_FPS):
        raise MotionFormatError(f"{path}: implausible frame rate {fps:g} Hz")
    n_body = 23 if poses.shape[1] == 72 else 21
    shape, j0 = None, SMPL_NEUTRAL_J0
    if smpl_model is not None:
        from ..humanoid.smpl_body import body_from_smpl, smpl_rest

        betas = data.get("betas")
        shape = body_from_smpl(smpl_model, betas)
        j0 = smpl_rest(smpl_model, betas)[0][0]
    return smpl_to_clip(path.stem, poses[:, :3], poses[:, 3:3 + 3 * n_body], data["trans"], fps,
                        source=str(path), license=license, target_fps=target_fps, shape=shape,
                        pelvis_offset=j0)


def _floats(path: Path, what: str, value) -> np.ndarray:
    """``value`` as a float array, or a MotionFormatError naming the file and ``what``."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise MotionFormatError(f"{path}: {what} is not numeric ({e})") from None


def read_egoego_pickle(path: str | Path, *, license: str = "") -> list[MotionClip]:
    """EgoEgo/ARES ground-truth pickle (joblib): ``{i: {root_orient, body_pose, trans, ...}}``.
    The ground-truth head pose (``head_qpos``) is kept in ``meta["gt_head_qpos"]``."""
    path = Path(path)
    try:
        import joblib

        data = joblib.load(path)
    except ImportError:
        with open(path, "rb") as f:
            data = pickle.load(f)
    except Exception as e:
        raise MotionFormatError(f"{path}: unreadable pickle ({type(e).__name__}: {e})") from None
    takes = data.values() if isinstance(data, dict) and "root_orient" not in data else [data]
    if not takes:
        raise MotionFormatError(f"{path}: no takes in the pickle")
    clips = []
    for i, d in enumerate(takes):
        if not isinstance(d, dict) or not {"root_orient", "body_pose", "trans"} <= set(d):
            raise MotionFormatError(f"{path}: take {i} lacks root_orient/body_pose/trans")
        name = path.stem if len(data) == 1 else f"{path.stem}_{i}"
        clip = smpl_to_clip(name, d["root_orient"], d["body_pose"], d["trans"], 30.0,
                            source=str(path), license=license)
        if "head_qpos" in d:
            clip.meta["gt_head_qpos"] = np.asarray(d["head_qpos"], dtype=float).round(6).tolist()
        clips.append(clip)
    return clips
