"""Import any supported motion file as humanoid clips: the one entry point the CLI uses.

Formats, chosen by suffix and content:

=====================  ===============================================  ===================
suffix                 what                                             how
=====================  ===============================================  ===================
``.bvh``               Biovision hierarchy                              positions, retarget
``.amc`` (+ ``.asf``)  Acclaim / CMU mocap                              positions, retarget
``.txt`` ``.json``     DeepMimic motion (+ ``humanoid3d_character``)    positions, retarget
``.npz``               AMASS / SMPL(-H/-X) parameters                   rotation transfer
``.npz``               a kinpoly clip (``qpos`` + ``meta``)             as is
``.p`` ``.pkl``        original Kin-Poly pickle, or EgoEgo ground truth positions / rotations
=====================  ===============================================  ===================

Action labels: a ``labels.csv`` beside the files (columns ``file, action, start_s, end_s`` and
optionally ``spans_s`` as ``a-b;c-d``) labels each clip it names.
"""

from __future__ import annotations

import csv
import logging
import os
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..humanoid.skeleton import BODY_INDEX, BodyShape
from .clip import ACTIONS, MOCAP_SUFFIXES, MotionClip
from .source import MotionFormatError

log = logging.getLogger(__name__)

MOTION_SUFFIXES = (*MOCAP_SUFFIXES, ".npz")  # .npz: AMASS, or a kinpoly clip
CMU_LICENSE = "CMU Graphics Lab Motion Capture Database: free for all uses; cite mocap.cs.cmu.edu"
_SKIP_NAMES = {"labels.csv", "humanoid3d_character.json", "index.json", "summary.json",
               "metadata.json", "skeleton_labels.json", "device_calibration.json",
               "skeleton_aria_association.json",
               "shape.npz"}  # AMASS: each subject's body shape (betas), not a motion


def find_motion_files(paths: list[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (recursively) into the motion files they contain, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in MOTION_SUFFIXES
                          and f.name not in _SKIP_NAMES and not f.name.startswith("."))
        else:
            out.append(p)
    return out


def read_labels(folder: Path) -> dict[str, dict]:
    """``labels.csv`` of a folder: file name -> {action, intervals}; {} if there is none."""
    path = folder / "labels.csv"
    if not path.is_file():
        return {}
    labels = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            action = (row.get("action") or "").strip() or None
            if action is not None and action not in ACTIONS:
                log.warning("%s: unknown action %r for %s ignored", path, action, row.get("file"))
                action = None
            intervals = []
            for span in (row.get("spans_s") or "").split(";"):
                if "-" in span.strip():
                    a, b = span.split("-")
                    intervals.append((float(a), float(b)))
            if not intervals and row.get("start_s") and row.get("end_s"):
                intervals = [(float(row["start_s"]), float(row["end_s"]))]
            labels[row["file"].strip()] = {"action": action, "intervals": intervals,
                                           "description": row.get("description", "")}
    return labels


def _license_for(path: Path) -> str:
    from .formats import guess_license

    lic = guess_license(path)
    if not lic and path.suffix.lower() in (".amc", ".asf"):
        return CMU_LICENSE
    return lic


def import_file(path: str | os.PathLike, body: BodyShape | str = "fit",
                smpl_model: str | os.PathLike | None = None, up_axis: str | None = None,
                units: str | None = None, amc_fps: float | None = None,
                npy_fps: float | None = None) -> list[MotionClip]:
    """Read one motion file into clips (30 Hz, grounded, labelled when labels.csv says so).

    ``up_axis`` ("y" or "z"): the world up axis of a BVH or AMC file, if not the formats' usual
    Y (a BVH exported Z up). It is not guessed: a rig's zero-rotation pose need not stand (the
    Bandai BVH's points its head along X) and a clip's motion need not be upright (a crawl).
    ``units``: a BVH file's length unit (``m dm cm mm in ft cmu``), if not the guessed one.
    ``amc_fps``: an AMC file's frame rate, which the format does not store (default: CMU's 120).
    ``npy_fps``: the frame rate of a joint-position ``.npy`` (HumanML3D, MDM; default their 20;
    :mod:`.formats.joints`), whose up axis is ``up_axis`` (default Y).

    Raises MotionFormatError / ClipError with a message naming the file.
    """
    from .formats import read_source_motion
    from .kinpoly_pickle import read_kinpoly_pickle
    from .retarget import retarget
    from .smpl import read_amass_npz, read_egoego_pickle

    path = Path(path)
    if not path.is_file():
        raise MotionFormatError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise MotionFormatError(f"{path}: empty file")
    suffix = path.suffix.lower()
    lic = _license_for(path)
    if suffix == ".npz":
        if not zipfile.is_zipfile(path):
            raise MotionFormatError(f"{path}: not a valid .npz file (not a zip archive; truncated or another format?)")
        try:
            with np.load(path, allow_pickle=False) as z:
                files = set(z.files)
        except Exception as e:
            raise MotionFormatError(f"{path}: unreadable npz ({type(e).__name__}: {e})") from None
        clips = [MotionClip.load(path)] if {"qpos", "meta"} <= files else \
            [read_amass_npz(path, license=lic, smpl_model=smpl_model)]
    elif suffix in (".p", ".pkl"):
        try:
            clips = read_kinpoly_pickle(path, license=lic, body=body)
        except MotionFormatError as first:  # not a Kin-Poly pickle: maybe EgoEgo (joblib)
            try:
                clips = read_egoego_pickle(path, license=lic)
            except MotionFormatError as second:
                why = [str(e).removeprefix(str(path)).lstrip(": ") for e in (first, second)]
                raise MotionFormatError(f"{path}: neither a Kin-Poly pickle ({why[0]}) nor an "
                                        f"EgoEgo/SMPL pickle ({why[1]})") from None
    elif suffix == ".npy":
        from .formats.joints import read_joint_positions

        clips = []
        for src in read_joint_positions(path, fps=npy_fps, up_axis=up_axis, license=lic):
            clips.append(retarget(src, body))
            if src.meta.get("description"):  # MDM's text prompt
                clips[-1].meta["description"] = src.meta["description"]
    elif suffix in (".bvh", ".amc", ".txt", ".json"):
        options = {"up_axis": up_axis} if up_axis and suffix in (".bvh", ".amc") else {}
        if units and suffix == ".bvh":
            options["units"] = units
        if amc_fps and suffix == ".amc":
            options["fps"] = float(amc_fps)
        clips = [retarget(src, body) for src in read_source_motion(path, license=lic, **options)]
    else:
        raise MotionFormatError(f"{path}: unsupported file type {suffix!r} (supported: {', '.join(MOTION_SUFFIXES)})")
    if not clips:
        raise MotionFormatError(f"{path}: holds no motion")
    label = read_labels(path.parent).get(path.name)
    for clip in clips:
        if label:
            clip.action = label["action"] or clip.action
            clip.action_intervals = label["intervals"]
            if label["description"]:
                clip.meta["description"] = label["description"]
    return clips


@dataclass
class ImportReport:
    imported: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)  # {"file", "error"}


def upright_share(clip: MotionClip) -> float:
    """Share of a clip's frames whose head is above its pelvis (within 60 degrees of vertical).
    Near 0 for crawls and lying motions, and for every clip of a file read with the wrong up
    axis."""
    p = clip.body_states().positions
    v = p[:, BODY_INDEX["Head"]] - p[:, BODY_INDEX["Pelvis"]]
    return float(np.mean(v[:, 2] > 0.5 * np.linalg.norm(v, axis=1)))


FLOAT_WARNING_M = 0.03  # kinpoly motion import lists clips whose feet stay higher than this


def feet_above_floor(clip: MotionClip) -> float:
    """How high a clip's feet stay above the floor (m): the 10th percentile over frames of its
    lowest sole point. Near 0 when the feet rest on the floor for at least a tenth of the clip
    (a run's stance frames included); more when one frame's dip set the floor lower than the
    feet rest (a rolled foot, a landing), or when the motion stands on things the clip does not
    hold (steps, a climbing frame, uneven ground)."""
    from .retarget import sole_height

    return float(np.percentile(sole_height(clip.qpos, clip.body), 10))


def try_import(path: str | os.PathLike, body: BodyShape | str = "fit",
               smpl_model: str | os.PathLike | None = None, up_axis: str | None = None,
               units: str | None = None, amc_fps: float | None = None,
               npy_fps: float | None = None) -> tuple[list[MotionClip] | None, str | None]:
    """:func:`import_file` that never raises: ``(clips, None)``, or ``(None, message)`` with a
    one-line message naming the file (for batches, where one bad file must not stop the rest)."""
    try:
        return import_file(path, body, smpl_model, up_axis, units, amc_fps, npy_fps), None
    except InputError as e:  # MotionFormatError, ClipError: the message says what is wrong
        error = str(e)
    except Exception as e:  # keep the type for the report
        error = f"{type(e).__name__}: {e}"
    if str(path) not in error:
        error = f"{path}: {error}"
    return None, " ".join(error.split())


def _import_one(args) -> tuple[str, list[MotionClip] | None, str | None]:
    return str(args[0]), *try_import(*args)


def import_many(files: list[Path], out_dir: Path, *, body: BodyShape | str = "fit",
                workers: int | None = None, progress: bool = True,
                smpl_model: str | os.PathLike | None = None, up_axis: str | None = None,
                units: str | None = None, amc_fps: float | None = None,
                npy_fps: float | None = None) -> ImportReport:
    """Import ``files`` into the clip folder ``out_dir`` in parallel, collecting failures."""
    from tqdm import tqdm

    from .clip import ClipFolder

    folder = ClipFolder(out_dir, create=True)
    report = ImportReport()
    workers = workers or min(len(files), os.cpu_count() or 1)
    jobs = [(f, body, smpl_model, up_axis, units, amc_fps, npy_fps) for f in files]
    if workers > 1 and len(files) > 1:
        pool = ProcessPoolExecutor(max_workers=workers)
        results = pool.map(_import_one, jobs, chunksize=1)
    else:
        pool, results = None, map(_import_one, jobs)
    taken: set[str] = set(folder)
    try:
        for path, clips, error in tqdm(results, total=len(jobs), disable=not progress, desc="import", unit="file"):
            if error is not None:
                report.failed.append({"file": path, "error": error})
                continue
            for clip in clips:
                name, k = clip.name, 1
                while name in taken and clip.source != _source_of(folder, name):
                    k += 1
                    name = f"{clip.name}_{k}"
                clip.name = name
                taken.add(name)
                folder.add(clip, write_index=False)
                report.imported.append({**clip.summary(), "upright": round(upright_share(clip), 3),
                                        "feet_above_floor_m": round(feet_above_floor(clip), 4),
                                        "dropped_leading_frames": clip.meta.get("dropped_leading_frames", 0)})
            folder.write_index()  # index after each file: a killed import keeps what it wrote
    finally:
        if pool is not None:
            pool.shutdown()
    return report


def _source_of(folder, name: str) -> str | None:
    entry = next((e for e in folder.entries() if e["name"] == name), None)
    return entry.get("source") if entry else None


def _is_clip_file(path: Path) -> bool:
    """Whether ``path`` is a kinpoly clip file (an AMASS .npz is mocap to import)."""
    if path.suffix.lower() != ".npz" or not zipfile.is_zipfile(path):
        return False
    with np.load(path, allow_pickle=False) as z:
        return {"qpos", "meta"} <= set(z.files)


@dataclass
class OpenedMotions:
    """The clips a command tracks (:func:`open_motions`)."""

    names: list[str]
    load: object  # name -> MotionClip
    imported: bool = False  # imported from mocap files for this run, not read from clips
    failures: dict = field(default_factory=dict)  # mocap file -> one-line message


def open_motions(path: str | os.PathLike, body: BodyShape | str = "fit") -> OpenedMotions:
    """The clips of ``path`` for a command that tracks them: a clip file or a clip folder as it
    is, else mocap (a file, or a folder of files, in any format :func:`import_file` reads)
    imported on the fly with ``body``, nothing written (``kinpoly motion import`` makes a clip
    folder to reuse), with the files that could not be imported."""
    from .clip import ClipFolder, load_clips

    path = Path(path)
    if path.is_dir():
        folder = ClipFolder(path)  # read once: an unindexed folder loads every clip to list it
        if len(folder):
            return OpenedMotions(list(folder), folder.load)
    elif _is_clip_file(path):
        clips = {c.name: c for c in load_clips(path)}
        return OpenedMotions(list(clips), clips.__getitem__)
    clips, failures = {}, {}
    for f in find_motion_files([path]):
        imported, error = try_import(f, body)
        if error is not None:
            failures[str(f)] = error
            continue
        for clip in imported:
            name, k = clip.name, 1
            while name in clips:
                k += 1
                name = f"{clip.name}_{k}"
            clip.name = name
            clips[name] = clip
    return OpenedMotions(list(clips), clips.__getitem__, True, failures)
