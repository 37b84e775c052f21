"""Name tables that map a source skeleton's joints onto the humanoid's bodies.

Names are compared after normalising (lower case, namespace prefixes such as ``mixamorig:``
dropped, a prefix every joint shares dropped (``Bip01 L Thigh``, ``Character1_LeftUpLeg``),
separators removed), and each side-specific base name is tried with the usual side tokens as
prefix or suffix (``LeftUpLeg``, ``L_Hip``, ``UpperLeg_L``, ``lhip``, ``HipLeft`` ...). Where a
skeleton has both an ankle and a foot joint (SMPL, Kinect) the ankle is the ankle and the foot
the toe; where it has only a foot (BVH, Biped) the foot is the ankle. Bodies are
resolved in a fixed order and a source joint is used at most once, which settles the one
common ambiguity: ``LeftShoulder`` is the clavicle in skeletons that also have ``LeftArm``
(Mixamo, CMU BVH) and the upper arm in those that do not (DeepMimic).

Tables are for joint *start* points (BVH, DeepMimic, SMPL). Acclaim ASF/AMC sources report
bone *end* points (see :mod:`kinpoly.motion.formats.asf_amc`), so they get their own table.
Bodies without a match (e.g. the two middle spine bodies) get no position target; the
retargeting solver places them by interpolation.
"""

from __future__ import annotations

import os
import re

from .source import MotionFormatError, SourceMotion

_SIDES = {"L": ("left", "l", "lft"), "R": ("right", "r", "rgt")}

# Resolution order matters (see module docstring): upper arm before clavicle, wrist before hand.
# DAZ / Poser / MakeHuman names (the "Daz-friendly" CMU BVH release: hip, abdomen, chest,
# lCollar, lShldr, lThigh, lShin; DAZ Genesis: abdomenLower/Upper, chestUpper, lShldrBend,
# lForearmBend, lThighBend) and the Unreal Engine mannequin's (spine_01, neck_01, thigh_l,
# calf_l, ball_l, clavicle_l, upperarm_l, lowerarm_l, middle_01_l) and Xsens MVN's BVH export's
# (Chest, Chest2, Chest3, Chest4 up the spine: the collars hang from Chest4) and OptiTrack
# Motive's (Hip, Ab, Chest, LShoulder = the collar, LUArm, LFArm, LThigh, LShin) are in these
# tables too.
_CENTRE_BASES = {
    "Pelvis": ("hips", "pelvis", "hip", "root", "spinebase"),
    "Torso": ("torso", "spine1", "abdomen", "abdomenlower", "spine01", "chest", "ab"),
    "Spine": ("spine", "spine2", "spinemid", "abdomenupper", "spine02", "chest2"),
    "Chest": ("spine3", "chest4", "chest", "upperchest", "thorax", "spine2", "spineshoulder", "chestupper",
              "spine03"),
    "Neck": ("neck", "neck1", "lowerneck", "necklower", "neck01"),
    "Head": ("head",),
}
_SIDE_BASES = {
    "Hip": ("upleg", "upperleg", "hip", "thigh", "femur", "thighbend"),
    "Knee": ("leg", "lowerleg", "knee", "shin", "calf", "tibia", "crus"),
    "Ankle": ("ankle", "foot"),
    "Toe": ("toebase", "toe", "toes", "toe0", "ball", "foot2", "foot"),
    "Shoulder": ("arm", "upperarm", "uparm", "uarm", "humerus", "shoulder", "shldr", "shldrbend"),
    "Thorax": ("collar", "clavicle", "thorax", "shoulder"),
    "Elbow": ("forearm", "lowerarm", "elbow", "radius", "forearmbend", "farm"),
    "Wrist": ("wrist", "hand"),
    "Hand": ("hand", "handmiddle1", "palm", "mid1", "middle01"),
}
_ORDER = ["Pelvis", "L_Hip", "R_Hip", "L_Knee", "R_Knee", "L_Ankle", "R_Ankle", "L_Toe", "R_Toe",
          "Chest", "Torso", "Spine", "Neck", "Head", "L_Shoulder", "R_Shoulder", "L_Thorax", "R_Thorax",
          "L_Elbow", "R_Elbow", "L_Wrist", "R_Wrist", "L_Hand", "R_Hand"]

# Acclaim (CMU) bone names -> the body whose joint sits at that bone's END point.
_ASF_TABLE = {
    "Pelvis": "root", "L_Hip": "lhipjoint", "R_Hip": "rhipjoint", "L_Knee": "lfemur",
    "R_Knee": "rfemur", "L_Ankle": "ltibia", "R_Ankle": "rtibia", "L_Toe": "lfoot",
    "R_Toe": "rfoot", "Chest": "upperback", "Neck": "thorax", "Head": "upperneck",
    "L_Shoulder": "lclavicle", "R_Shoulder": "rclavicle", "L_Elbow": "lhumerus",
    "R_Elbow": "rhumerus", "L_Wrist": "lradius", "R_Wrist": "rradius", "L_Hand": "lhand",
    "R_Hand": "rhand",
}
# End sites that stand in for a missing body: body -> (body whose source joint has the end site).
_END_SITE_FALLBACK = {"L_Toe": "L_Ankle", "R_Toe": "R_Ankle", "L_Hand": "L_Wrist", "R_Hand": "R_Wrist"}


_SEPARATORS = " _-.:|"


def normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.split(":")[-1].split("|")[-1].lower())


def shared_prefix(names: list[str]) -> str:
    """The leading token every joint name shares (``Bip01``, ``Character1``), ending at a
    separator or at the end of a name (3ds Max Biped's root is ``Bip01`` itself); ""
    if there is none."""
    if len(names) < 2:
        return ""
    p = os.path.commonprefix(list(names))
    while p and not all(n == p or n[len(p)] in _SEPARATORS for n in names):
        p = p[:-1]
    return p if p.strip(_SEPARATORS) and any(n != p for n in names) else ""


def _candidates(body: str) -> list[str]:
    if body in _CENTRE_BASES:
        return list(_CENTRE_BASES[body])
    side, part = body.split("_", 1)
    out = []
    for base in _SIDE_BASES[part]:
        for tok in _SIDES[side]:
            out += [tok + base, base + tok]
    return out


_SPINE = ("Torso", "Spine", "Chest")  # bottom to top


def _order_spine(mapping: dict[str, str], source: SourceMotion) -> None:
    """Numbered spines differ: SMPL's spine1-3 start at 1, Mixamo's and Biped's Spine, Spine1,
    Spine2 at none. Whatever the names gave, the matched spine joints go to Torso, Spine and
    Chest from the bottom of the chain up."""
    bodies = [b for b in _SPINE if b in mapping]
    index = {n: i for i, n in enumerate(source.joint_names)}
    if len(bodies) < 2 or any(mapping[b] not in index for b in bodies):
        return

    def depth(j: int) -> int:
        d = 0
        while j >= 0 and d <= len(source.parents):
            j, d = int(source.parents[j]), d + 1
        return d

    joints = sorted((mapping[b] for b in bodies), key=lambda n: depth(index[n]))
    mapping.update(zip(bodies, joints))


def map_joints(source: SourceMotion) -> dict[str, str]:
    """Humanoid body name -> source joint (or end-site) name, for every body that matches.

    Raises MotionFormatError if the essential joints (pelvis, both hips, knees, ankles and
    something up the spine) cannot all be found.
    """
    if source.meta.get("format") == "amc":
        present = set(source.joint_names)
        mapping = {b: j for b, j in _ASF_TABLE.items() if j in present}
    else:
        prefix = shared_prefix(source.joint_names)
        by_norm: dict[str, str] = {}
        for j in source.joint_names:
            by_norm.setdefault(normalise(j[len(prefix):]), j)
        used: set[str] = set()
        mapping = {}
        for body in _ORDER:
            for cand in _candidates(body):
                j = by_norm.get(cand)
                if j is not None and j not in used:
                    mapping[body], _ = j, used.add(j)
                    break
        _order_spine(mapping, source)
    for body, holder in _END_SITE_FALLBACK.items():
        if body not in mapping and holder in mapping:
            end = f"{mapping[holder]}_end"
            if end in source.end_sites:
                mapping[body] = end
    required = ["Pelvis", "L_Hip", "R_Hip", "L_Knee", "R_Knee", "L_Ankle", "R_Ankle"]
    missing = [b for b in required if b not in mapping]
    if not any(b in mapping for b in ("Chest", "Neck", "Head")):
        missing.append("Chest/Neck/Head")
    if missing:
        raise MotionFormatError(
            f"{source.source or source.name}: cannot map joints {', '.join(missing)} onto the humanoid "
            f"(source joints: {', '.join(source.joint_names[:40])}); rename them or extend "
            f"kinpoly/motion/joint_names.py")
    return mapping
