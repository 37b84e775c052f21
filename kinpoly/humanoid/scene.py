"""Scene objects the humanoid interacts with: small builders that compose into one MJCF.

Each object is described by a :class:`SceneObject` (kind, name, pose, size) and turned into an
MJCF ``<body>`` by the builder of its kind. Sizes are in metres and follow the original
Kin-Poly scenes (chair seat ~0.45 m, pushable box ~0.35 m, step ~0.2 m, ...). Static furniture
is fixed to the world; ``box`` has a free joint so it can be pushed. An object's pose is that
of its base: the centre of its footprint on the floor (``pos[2]`` is 0 for furniture standing
on the floor), yaw given by ``quat`` (wxyz); ``bar`` and ``rail`` are placed at their axis.

``bar`` is a rung the feet stand on; ``rail`` is a horizontal bar one *sits* on (a playground
top rail, the seat of a climbing frame): the same capsule, lying across the facing (local +X), but a
seat, which the evaluation's sit criterion counts like a chair (:data:`SEAT_KINDS`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np

# Collision groups: the humanoid (contype 2, conaffinity 1) touches the world and objects
# (contype 3, conaffinity 3) but not itself; objects touch each other and the floor.
WORLD_CONTYPE, WORLD_CONAFFINITY = 3, 3

DEFAULT_SIZES: dict[str, dict[str, float]] = {
    "chair": {"seat_height": 0.45, "seat_width": 0.45, "seat_depth": 0.45, "back_height": 0.45},
    "box": {"side": 0.35, "mass": 5.0},
    "table": {"height": 0.75, "length": 1.2, "width": 0.7},
    "can": {"radius": 0.15, "height": 0.9},
    "step": {"height": 0.2, "length": 0.6, "width": 0.8},
    "platform": {"height": 0.6, "length": 1.0, "width": 1.0},
    "bar": {"radius": 0.03, "length": 1.5},
    "rail": {"radius": 0.03, "length": 0.5},
}
OBJECT_KINDS = tuple(DEFAULT_SIZES)
SEAT_KINDS = ("chair", "rail")  # objects a person sits on (the sit criterion's objects)


@dataclass
class SceneObject:
    """One object placed in a scene. ``size`` overrides entries of ``DEFAULT_SIZES[kind]``."""

    kind: str
    name: str = ""
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    size: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in DEFAULT_SIZES:
            raise ValueError(f"unknown object kind {self.kind!r}; known: {', '.join(OBJECT_KINDS)}")
        unknown = set(self.size) - set(DEFAULT_SIZES[self.kind])
        if unknown:
            raise ValueError(f"{self.kind}: unknown size keys {sorted(unknown)}")
        self.name = self.name or self.kind
        self.pos = tuple(float(v) for v in self.pos)
        q = np.asarray(self.quat, dtype=float)
        self.quat = tuple((q / np.linalg.norm(q)).tolist())

    @property
    def dims(self) -> dict[str, float]:
        return {**DEFAULT_SIZES[self.kind], **self.size}

    @property
    def is_free(self) -> bool:
        return self.kind == "box"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "pos": list(self.pos),
                "quat": list(self.quat), "size": dict(self.size)}

    @classmethod
    def from_dict(cls, d: dict) -> "SceneObject":
        return cls(kind=d["kind"], name=d.get("name", ""), pos=tuple(d.get("pos", (0, 0, 0))),
                   quat=tuple(d.get("quat", (1, 0, 0, 0))), size=dict(d.get("size", {})))


def _fmt(v) -> str:
    return " ".join(f"{x:.6g}" for x in np.atleast_1d(v))


def _geom(parent: ET.Element, name: str, **attrs) -> ET.Element:
    attrs = {k: (_fmt(v) if not isinstance(v, str) else v) for k, v in attrs.items()}
    return ET.SubElement(parent, "geom", name=name, contype=str(WORLD_CONTYPE),
                         conaffinity=str(WORLD_CONAFFINITY), **attrs)


def _box(parent, name, center, half, material="object"):
    return _geom(parent, name, type="box", pos=center, size=half, material=material)


def object_element(obj: SceneObject) -> ET.Element:
    """MJCF ``<body>`` for one object."""
    d = obj.dims
    body = ET.Element("body", name=obj.name, pos=_fmt(obj.pos), quat=_fmt(obj.quat))
    n = obj.name
    if obj.kind == "chair":
        h, w, dep, back = d["seat_height"], d["seat_width"], d["seat_depth"], d["back_height"]
        t = 0.04
        _box(body, f"{n}_seat", (0, 0, h - t / 2), (dep / 2, w / 2, t / 2))
        for i, (sx, sy) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
            _box(body, f"{n}_leg{i}", (sx * (dep / 2 - 0.025), sy * (w / 2 - 0.025), (h - t) / 2),
                 (0.02, 0.02, (h - t) / 2))
        # the back rest is behind the sitter: the chair faces its local +X
        _box(body, f"{n}_back", (-dep / 2 + 0.02, 0, h + back / 2), (0.02, w / 2, back / 2))
    elif obj.kind == "box":
        ET.SubElement(body, "freejoint", name=f"{n}_free")
        s = d["side"] / 2
        _geom(body, f"{n}_geom", type="box", size=(s, s, s), mass=str(d["mass"]), material="box",
              friction="0.6 0.005 0.0001")
    elif obj.kind == "table":
        h, ln, w = d["height"], d["length"], d["width"]
        t = 0.04
        _box(body, f"{n}_top", (0, 0, h - t / 2), (ln / 2, w / 2, t / 2))
        for i, (sx, sy) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
            _box(body, f"{n}_leg{i}", (sx * (ln / 2 - 0.04), sy * (w / 2 - 0.04), (h - t) / 2),
                 (0.025, 0.025, (h - t) / 2))
    elif obj.kind == "can":
        _geom(body, f"{n}_geom", type="cylinder", pos=(0, 0, d["height"] / 2),
              size=(d["radius"], d["height"] / 2), material="object")
    elif obj.kind in ("step", "platform"):
        h = d["height"]
        _box(body, f"{n}_geom", (0, 0, h / 2), (d["length"] / 2, d["width"] / 2, h / 2))
    elif obj.kind in ("bar", "rail"):
        _geom(body, f"{n}_geom", type="capsule", size=(d["radius"], d["length"] / 2),
              zaxis="0 1 0", material="object")
    return body


def object_top_height(obj: SceneObject) -> float:
    """Height of the surface a person would sit or stand on (m above the object's base)."""
    d = obj.dims
    return {"chair": d.get("seat_height", 0.0), "table": d.get("height", 0.0),
            "step": d.get("height", 0.0), "platform": d.get("height", 0.0),
            "box": d.get("side", 0.0), "can": d.get("height", 0.0),
            "rail": d.get("radius", 0.0)}.get(obj.kind, 0.0)
