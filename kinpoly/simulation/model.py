"""Compiled humanoid models per body shape, cached by ``BodyShape.key()``.

Every clip carries its own fitted body; simulation builds the MuJoCo model of that body with
the project's :func:`~kinpoly.humanoid.mjcf.build_model` (PD servos on the 69 hinges, floor,
``implicitfast``, 1/450 s) and reuses it for every clip of the same body. Models are shared and
must not be modified; each simulator owns its own ``MjData``.
"""

from __future__ import annotations

import mujoco

from ..humanoid.mjcf import build_model
from ..humanoid.skeleton import BodyShape

_CACHE: dict[tuple, mujoco.MjModel] = {}
MAX_CACHED = 512


def scene_model(body: BodyShape, objects=()) -> mujoco.MjModel:
    """The model of ``body`` with the scene ``objects`` (SceneObject) around it; without
    objects, :func:`humanoid_model`. Compiled models are cached by their MJCF (do not modify).
    The humanoid's qpos/qvel come first; each free object (a box) adds 7/6 more."""
    objects = tuple(objects)
    return build_model(body, objects) if objects else humanoid_model(body)


def humanoid_model(body: BodyShape) -> mujoco.MjModel:
    """The compiled model of ``body`` standing on a floor (cached, do not modify)."""
    key = body.key()
    m = _CACHE.get(key)
    if m is None:
        if len(_CACHE) >= MAX_CACHED:
            _CACHE.pop(next(iter(_CACHE)))
        m = _CACHE[key] = build_model(body)
    return m
