"""Scene placement statistics of an egocentric build (from its manifest and take metadata).

    .venv/bin/python benchmarks/ego_scenes.py data/ego [--json out.json]

Per action: takes, how many were labelled vs detected, objects placed by kind, the deepest
reference-body penetration into any placed object (the build rejects > 1 cm), and the failures
with their reasons.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from kinpoly.egocentric.take import read_manifest
from report import command_line, write_json


def summarise(folder: Path) -> dict:
    m = read_manifest(folder)
    per_action: dict[str, dict] = {}
    depth = []
    for t in m["takes"]:
        a = per_action.setdefault(t["action"] or "none", {"takes": 0, "frames": 0, "detected": 0,
                                                          "objects": Counter(), "no_object": 0})
        a["takes"] += 1
        a["frames"] += t["frames"]
        sc = t.get("scene", {})
        a["detected"] += bool(sc.get("detected"))
        a["objects"].update(sc.get("objects", []))
        a["no_object"] += not sc.get("objects")
        if sc.get("objects"):
            depth.append(sc.get("max_object_penetration_m", 0.0))
    for a in per_action.values():
        a["objects"] = dict(a["objects"])
    return {"takes": len(m["takes"]), "failures": len(m["failures"]),
            "failure_reasons": [f"{f['take']}: {f['error']}" for f in m["failures"]],
            # SPEC penetration beyond the 5 mm tolerance; contact depth <= this + 5 mm
            "max_object_penetration_m": max(depth) if depth else None,
            "takes_with_penetration": sum(d > 0 for d in depth),
            "takes_with_objects": len(depth), "per_action": per_action}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    out = summarise(a.folder)
    write_json(a.json, {"command": command_line(__file__), **out}, echo=True)


if __name__ == "__main__":
    main()
