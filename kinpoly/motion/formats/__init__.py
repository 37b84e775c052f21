"""Mocap file importers: each turns a file into :class:`~kinpoly.motion.source.SourceMotion`.

Every importer returns the source skeleton's own joints with GLOBAL positions in metres, in the
file's own world axes (``up_axis`` says which one is up), plus global joint rotations and named
end points where the format has them. They know nothing about the kinpoly humanoid; retargeting
does the mapping. See the modules for each format's conventions:

* :mod:`.bvh` - ``.bvh`` (Biovision hierarchy), also :func:`write_bvh`;
* :mod:`.asf_amc` - ``.amc`` motion + ``.asf`` skeleton (Acclaim, CMU);
* :mod:`.deepmimic` - ``.txt``/``.json`` DeepMimic motion + ``humanoid3d_character.json``;
* :mod:`.joints` - ``.npy`` joint positions in SMPL's order (HumanML3D, MDM, T2M-GPT);
* :mod:`.adt_skeleton` - ``.json`` Aria Digital Twin body skeletons (OptiTrack joint positions).
"""

from __future__ import annotations

from pathlib import Path

from kinpoly.motion.formats.asf_amc import AsfSkeleton, find_asf, read_amc, read_asf
from kinpoly.motion.formats.bvh import read_bvh, write_bvh
from kinpoly.motion.formats.deepmimic import read_deepmimic
from kinpoly.motion.formats.joints import read_joint_positions
from kinpoly.motion.source import MotionFormatError, SourceMotion

SUPPORTED_SUFFIXES = (".bvh", ".amc", ".txt", ".json", ".npy")

# first line of a LICENSE file -> short licence name
_KNOWN_LICENSES = {
    "mit license": "MIT",
    "attribution-noncommercial 4.0 international": "CC BY-NC 4.0",
    "attribution 4.0 international": "CC BY 4.0",
    "attribution-noncommercial-sharealike 4.0 international": "CC BY-NC-SA 4.0",
    "apache license": "Apache-2.0",
    "bsd 3-clause license": "BSD-3-Clause",
}


def guess_license(path: str | Path) -> str:
    """Licence of a data file from the first non-empty line of a ``LICENSE`` file beside it.

    Well-known licence headings are shortened ("MIT License" -> "MIT", "Attribution-NonCommercial
    4.0 International" -> "CC BY-NC 4.0"); any other first line is returned as is; "" if there is
    no LICENSE file.
    """
    folder = Path(path).parent
    for cand in ("LICENSE", "LICENSE.txt", "LICENSE.md"):
        lic = folder / cand
        if lic.is_file():
            try:
                with lic.open(encoding="utf-8", errors="replace") as f:
                    first = next((ln.strip() for ln in f if ln.strip()), "")
            except OSError:
                return ""
            return _KNOWN_LICENSES.get(first.lower(), first)
    return ""


def read_source_motion(path: str | Path, *, asf: str | Path | AsfSkeleton | None = None, license: str = "",
                       **options) -> list[SourceMotion]:
    """Read any supported mocap file, choosing the reader by the file extension.

    Args:
        path: a ``.bvh``, ``.amc`` (needs its ASF), DeepMimic ``.txt``/``.json`` or joint-position
            ``.npy`` file.
        asf: for ``.amc``: the skeleton; default ``<subject>.asf`` beside ``<subject>_<take>.amc``.
        license: licence of the data; default :func:`guess_license`.
        **options: passed to the reader (``units``/``scale``/``up_axis`` for BVH, ``fps``/``up_axis``
            for AMC, ``character`` for DeepMimic, ``name`` for all).

    Returns a list: one element, but one per sample of an MDM ``results.npy``.
    Raises :class:`MotionFormatError` naming the file for anything unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise MotionFormatError(f"{path}: no such file")
    license = license or guess_license(path)
    suffix = path.suffix.lower()
    if suffix == ".bvh":
        return [read_bvh(path, license=license, **options)]
    if suffix == ".amc":
        return [read_amc(path, asf, license=license, **options)]
    if suffix == ".json" and _is_adt_skeleton(path):
        from .adt_skeleton import read_adt_skeleton

        return [read_adt_skeleton(path, license=license, **{k: v for k, v in options.items() if k == "name"})]
    if suffix in (".txt", ".json"):
        return [read_deepmimic(path, license=license, **options)]
    if suffix == ".npy":
        return read_joint_positions(path, license=license, **options)
    raise MotionFormatError(f"{path}: unsupported file type {suffix!r}; "
                            f"supported: {', '.join(SUPPORTED_SUFFIXES)}")


def _is_adt_skeleton(path: Path) -> bool:
    """Whether a JSON file looks like an ADT skeleton export (:mod:`.adt_skeleton`: lower-case
    ``"frames"``, where a DeepMimic clip has ``"Frames"``), which its reader then checks."""
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(65536)
    except (OSError, UnicodeDecodeError):
        return False  # the DeepMimic reader says what is wrong
    return '"frames"' in head and '"Frames"' not in head


__all__ = ["SUPPORTED_SUFFIXES", "AsfSkeleton", "MotionFormatError", "SourceMotion", "find_asf",
           "guess_license", "read_amc", "read_asf", "read_bvh", "read_deepmimic", "read_joint_positions", "read_source_motion",
           "write_bvh"]
