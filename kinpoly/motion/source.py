"""The boundary type between mocap file formats and retargeting.

Every importer (BVH, ASF/AMC, DeepMimic, ...) turns a file into a :class:`SourceMotion`:
the *source* skeleton's own joints with their global positions per frame, in metres, in the
file's own world axes. Retargeting (``kinpoly.motion.retarget``) is the only consumer; it maps
joints by name onto the humanoid, fixes the axes, scales, solves for humanoid ``qpos`` and
resamples to 30 Hz. Importers therefore know nothing about the humanoid.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError

# frame rates a mocap file can plausibly have (Hz); outside, the file's frame time is wrong
MIN_FPS, MAX_FPS = 1.0, 1000.0


class MotionFormatError(InputError):
    """A mocap file could not be read. The message names the file and the problem."""


def read_text(path) -> str:
    """A mocap text file's content (a UTF-8 byte order mark dropped; other non-UTF-8 bytes
    replaced); a clear MotionFormatError if unreadable, empty or binary."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    except OSError as e:
        raise MotionFormatError(f"{path}: cannot read: {e.strerror}") from None
    if not text.strip():
        raise MotionFormatError(f"{path}: file is empty")
    if "\x00" in text:
        raise MotionFormatError(f"{path}: not a text file (binary content: another format with "
                                f"this extension, or UTF-16 text; save it as UTF-8)")
    return text


@contextmanager
def format_errors(path) -> Iterator[None]:
    """Turn an unexpected parsing exception into a MotionFormatError naming the file."""
    try:
        yield
    except MotionFormatError:
        raise
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
        raise MotionFormatError(f"{path}: {type(e).__name__}: {e}") from None


@dataclass
class SourceMotion:
    """Joint trajectories of a source skeleton, as read from a mocap file.

    Attributes:
        name: clip name (file stem unless the format says otherwise).
        joint_names: the source skeleton's joint names, in file order (J of them).
        parents: (J,) int index of each joint's parent, -1 for the root.
        positions: (T, J, 3) global joint positions in metres, in the file's world axes.
        fps: frame rate of ``positions`` in Hz.
        up_axis: "y" or "z": which world axis of the file points up.
        source: path or description of where the data came from.
        license: licence of the data ("" if unknown).
        rotations: optional (T, J, 3, 3) global joint orientations (file world axes).
        end_sites: optional extra named points (e.g. BVH ``End Site``), name -> (T, 3) metres.
        meta: free-form extra information (units, original frame count, ...).
    """

    name: str
    joint_names: list[str]
    parents: np.ndarray
    positions: np.ndarray
    fps: float
    up_axis: str = "y"
    source: str = ""
    license: str = ""
    rotations: np.ndarray | None = None
    end_sites: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.parents = np.asarray(self.parents, dtype=np.int64)
        self.positions = np.asarray(self.positions, dtype=np.float64)
        where = self.source or self.name
        if self.positions.ndim != 3 or self.positions.shape[2] != 3:
            raise MotionFormatError(f"{where}: positions must be (T, J, 3), got {self.positions.shape}")
        if self.positions.shape[1] != len(self.joint_names) or len(self.parents) != len(self.joint_names):
            raise MotionFormatError(f"{where}: {len(self.joint_names)} joint names, {len(self.parents)} parents, "
                                    f"positions for {self.positions.shape[1]} joints")
        if self.positions.shape[0] == 0:
            raise MotionFormatError(f"{where}: no frames")
        if not MIN_FPS <= self.fps <= MAX_FPS:  # also NaN
            raise MotionFormatError(f"{where}: implausible frame rate {self.fps:g} Hz "
                                    f"(expected {MIN_FPS:g} to {MAX_FPS:g})")
        if self.up_axis not in ("y", "z"):
            raise MotionFormatError(f"{where}: up_axis must be 'y' or 'z', got {self.up_axis!r}")

    @property
    def num_frames(self) -> int:
        return int(self.positions.shape[0])

    def joint_index(self, name: str) -> int:
        return self.joint_names.index(name)
