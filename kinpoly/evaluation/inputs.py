"""What ``kinpoly eval --pred`` / ``--gt`` accept: clip folders, or mocap in any imported format.

:func:`open_clips` turns a path into a set of named clips, :class:`ClipFolder` or
:class:`ImportedClips`, both iterable over clip names with ``in`` and ``load(name)``:

- a folder with ``index.json`` (what ``kinpoly motion import`` writes), or without one whose
  motion files are all ``.npz`` directly inside it, at least one a kinpoly clip (clips copied
  by hand), or with no motion file at all: a :class:`ClipFolder`, read as it always was;
- any other folder: every motion file under it (``find_motion_files``: BVH, ASF/AMC,
  DeepMimic, AMASS/SMPL ``.npz``, Kin-Poly/EgoEgo pickles, kinpoly clip ``.npz``) imported in
  memory with ``import_file``, exactly as ``kinpoly motion import`` would (30 Hz, grounded,
  the humanoid fitted to each file's own skeleton, ``labels.csv`` actions);
- a single motion file: imported the same way (a pickle may hold several clips).

Clips are named as the importer names them (a BVH/AMC/npz file's stem, a pickle's keys); see
:func:`pair_single_files` for two single files. A file that fails to import, or a name that two
files of one side both give, is recorded in ``failures`` (``{"clip", "reason", "file"}``) and
the other files go on. Import is sequential, in memory (about 100x real time per core).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import InputError
from ..motion.clip import INDEX_FILE, ClipError, ClipFolder, MotionClip
from ..motion.importers import find_motion_files, try_import

log = logging.getLogger(__name__)


class ImportedClips:
    """Clips imported in memory from mocap files; ``failures`` lists what could not be used.

    ``what`` ("prediction" / "ground truth") starts every failure reason. ``blocked`` holds
    the names this side could not provide (a failed file's stem, a duplicated name), so that
    the other side's clip of that name is not reported a second time as unmatched.
    """

    def __init__(self, files: list[Path], what: str, single_file: bool = False):
        self.single_file = single_file  # opened from one file given by itself (not a folder)
        self.clips: dict[str, MotionClip] = {}
        self.failures: list[dict] = []
        self.blocked: set[str] = set()
        self.files = [str(f) for f in files]
        origin: dict[str, str] = {}
        duplicated: dict[str, list[str]] = {}
        for f in files:
            path = str(f)
            clips, error = try_import(f)
            if error is not None:
                stem = Path(path).stem
                self.failures.append({"clip": stem, "reason": f"{what}: could not import: {error}",
                                      "file": path})
                self.blocked.add(stem)
                continue
            for clip in clips:
                if clip.name in origin:
                    duplicated.setdefault(clip.name, [origin[clip.name]]).append(path)
                    continue
                origin[clip.name] = path
                self.clips[clip.name] = clip
        for name, paths in duplicated.items():
            del self.clips[name]
            self.blocked.add(name)
            self.failures.append({"clip": name, "reason": f"{what}: {len(paths)} files give a clip named "
                                  f"{name!r} ({', '.join(paths)}); rename them to match them by name",
                                  "file": paths[0]})

    def __iter__(self):
        return iter(list(self.clips))

    def __len__(self) -> int:
        return len(self.clips)

    def __contains__(self, name: str) -> bool:
        return name in self.clips

    def rename(self, old: str, new: str) -> None:
        clip = self.clips.pop(old)
        clip.name = new
        self.clips[new] = clip

    def load(self, name: str) -> MotionClip:
        if name not in self.clips:
            raise ClipError(f"no clip named {name!r}")
        return self.clips[name]


def _is_clip_folder(folder: Path, files: list[Path]) -> bool:
    """A folder read as a :class:`ClipFolder`: it has an index, or (clips copied by hand) every
    motion file in it is a ``.npz`` directly inside it and at least one is a kinpoly clip."""
    if (folder / INDEX_FILE).is_file():
        return True
    if not files or any(f.suffix.lower() != ".npz" or f.parent != folder for f in files):
        return False
    return len(ClipFolder(folder)) > 0


def open_clips(path: str | Path, what: str) -> ClipFolder | ImportedClips:
    """The clips of ``path`` (see the module docstring); ``what`` names the side in messages.
    A folder with neither an index nor motion files is an empty :class:`ClipFolder`."""
    path = Path(path)
    if path.is_file():
        return ImportedClips([path], what, single_file=True)
    if not path.is_dir():
        raise InputError(f"{what} {path}: no such file or folder")
    files = find_motion_files([path])
    if not files or _is_clip_folder(path, files):
        return ClipFolder(path)  # an empty folder too, as before: it scores nothing
    log.info("%s: importing %d motion file(s) from %s", what, len(files), path)
    return ImportedClips(files, what)


def pair_single_files(pred, gt) -> str | None:
    """Two single files of one clip each are a pair whatever their names (``run1_pred.bvh``
    against ``run1.bvh``): the prediction takes the ground truth's name. Returns the
    prediction's former name when it was renamed, else None."""
    if not (isinstance(pred, ImportedClips) and isinstance(gt, ImportedClips) and pred.single_file
            and gt.single_file and len(pred) == len(gt) == 1):
        return None
    (p,), (g,) = list(pred), list(gt)
    if p == g:
        return None
    pred.rename(p, g)
    return p
