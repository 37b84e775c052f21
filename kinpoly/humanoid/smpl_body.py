"""A humanoid body from SMPL shape parameters, for users who have their own SMPL model files.

SMPL's licence forbids redistributing its model, so kinpoly never ships one; this module reads
a model file the user supplies (an ``.npz`` as used by ``smplx``, or a pickle without chumpy
objects) and turns ``betas`` into a :class:`BodyShape`: rest joint positions
``J = J_regressor @ (v_template + shapedirs @ betas)`` give the segment offsets, the shaped
mesh gives the height, the ankle height above the sole, and the mass (mesh volume x 985 kg/m3,
the mean density of the human body). Only linear algebra is needed, no ``smplx`` or ``torch``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from .skeleton import BODY_INDEX, BODY_NAMES, PARENTS, SMPL_NAMES, BodyShape

BODY_DENSITY = 985.0  # kg/m^3
_C_SMPL_TO_OURS = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _load_model(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such SMPL model file")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=True) as z:
                return {k: z[k] for k in z.files}
        with open(path, "rb") as f:
            return dict(pickle.load(f, encoding="latin1"))
    except Exception as e:
        raise ValueError(f"{path}: unreadable SMPL model ({type(e).__name__}: {e}); "
                         "use the .npz/.pkl files that the smplx package reads") from None


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def _mesh_volume(v: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    return float(abs(np.einsum("ij,ij->i", a, np.cross(b, c)).sum()) / 6.0)


def smpl_rest(model_path: str | Path, betas: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Rest joints (24, 3) and vertices (V, 3) of the shaped SMPL body, in SMPL's own axes
    (Y up, facing +Z), plus the loaded model."""
    path = Path(model_path)
    m = _load_model(path)
    missing = [k for k in ("v_template", "shapedirs", "J_regressor") if k not in m]
    if missing:
        raise ValueError(f"{path}: not an SMPL model, missing {', '.join(missing)}")
    v = _dense(m["v_template"])
    shapedirs = _dense(m["shapedirs"])
    if betas is not None:
        betas = np.asarray(betas, dtype=np.float64).ravel()
        n = min(len(betas), shapedirs.shape[-1])
        v = v + shapedirs[..., :n] @ betas[:n]
    J = _dense(m["J_regressor"]) @ v
    if J.shape[0] < 24:
        raise ValueError(f"{path}: J_regressor gives {J.shape[0]} joints, SMPL needs 24")
    return J[:24], v, m


def body_from_smpl(model_path: str | Path, betas: np.ndarray | None = None) -> BodyShape:
    """:class:`BodyShape` of the SMPL body with ``betas`` (default: the mean shape)."""
    J, v, m = smpl_rest(model_path, betas)
    J = J @ _C_SMPL_TO_OURS.T
    v = v @ _C_SMPL_TO_OURS.T
    smpl_index = {n: i for i, n in enumerate(SMPL_NAMES)}
    joints = J[[smpl_index[n] for n in BODY_NAMES]]
    offsets = np.zeros((24, 3))
    for b in range(1, 24):
        offsets[b] = joints[b] - joints[PARENTS[b]]
    floor = v[:, 2].min()
    height = float(v[:, 2].max() - floor)
    ankle_height = float(joints[BODY_INDEX["L_Ankle"], 2] - floor)
    mass = None
    if "f" in m:
        mass = _mesh_volume(v, np.asarray(m["f"], dtype=np.int64)) * BODY_DENSITY
    if mass is None or not (10.0 <= mass <= 300.0):
        mass = 70.0 * (height / 1.75) ** 2
    return BodyShape(height=height, mass=float(mass), offsets=offsets, ankle_height=ankle_height)
