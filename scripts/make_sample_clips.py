"""Build the small sample clips bundled in ``kinpoly/assets/clips`` (run from the repo root).

They come from the CMU Graphics Lab Motion Capture Database (free for all uses; see the
README written next to them), imported with kinpoly's own importer, with the scene objects
that ``kinpoly.egocentric.scenes`` places for their motion:

    .venv/bin/python scripts/make_sample_clips.py ../shared/data
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from kinpoly.egocentric.scenes import synthesize_scene
from kinpoly.motion.clip import ClipFolder
from kinpoly.motion.importers import import_file

OUT = Path(__file__).resolve().parents[1] / "kinpoly" / "assets" / "clips"
# (file, name, start s, end s): a walk, stepping over uneven terrain, and sitting down on
# playground equipment. The last two are held out of the egocentric training split (test
# takes), so the demo shows the kinematic policy on motion it never saw; the walk was seen.
SAMPLES = [
    ("cmu_amc/02_01.amc", "walk_02_01", None, None),
    ("interactions/03_03.amc", "step_03_03", 0.0, 4.0),
    ("interactions/01_06.amc", "sit_01_06", 3.0, 9.0),
]

README = """# Sample clips (bundled)

Small humanoid clips used by `kinpoly demo` and the tests, made by
`scripts/make_sample_clips.py` with kinpoly's own importer (retargeted to the humanoid, 30 Hz).

Source: CMU Graphics Lab Motion Capture Database, http://mocap.cs.cmu.edu (subjects 02, 03,
01). CMU: "This dataset of motions is free for all uses." and "You may include this data in
commercially-sold products, but you may not resell this data directly, even in converted
form." Acknowledgement requested by CMU: "The data used in this project was obtained from
mocap.cs.cmu.edu. The database was created with funding from NSF EIA-0196217."

Each clip carries the scene objects its motion implies (from `kinpoly.egocentric.scenes`).

| clip | CMU take | description |
|---|---|---|
"""


def main(shared: Path) -> None:
    folder = ClipFolder(OUT, create=True)
    rows = []
    for rel, name, start, end in SAMPLES:
        clip = import_file(shared / rel)[0]
        if start is not None:
            clip = clip.slice(int(start * clip.fps), int(end * clip.fps), name=name)
        clip.name = name
        clip.source = f"CMU mocap {Path(rel).stem}"
        # the objects the motion implies (blocks under climbing feet, ...), seeded
        scene = synthesize_scene(clip, None, np.random.default_rng(0))
        clip.objects = scene.tracks
        clip.action = clip.action or scene.action
        folder.add(clip)
        rows.append(f"| `{name}` | {Path(rel).stem} | {clip.meta.get('description', 'walk')} "
                    f"({clip.num_frames} frames; objects: {', '.join(t.object.kind for t in clip.objects)}) |")
    (OUT / "README.md").write_text(README + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
