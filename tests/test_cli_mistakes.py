"""The commands as a user who makes mistakes runs them: an output that cannot be written (a file
where a folder goes and the reverse, a read-only place), a misspelt clip, an empty folder, a
wrong file extension, a setting out of range. Each ends in one ``Error: ...`` line that names
the fault, exit status 1 (2 for click's own usage errors), before any output is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kinpoly.cli import main
from kinpoly.config import CHECKPOINTS
from kinpoly.demo import SAMPLE_CLIPS, SAMPLE_TAKES
from kinpoly.errors import Command
from kinpoly.motion.clip import ClipFolder, MotionClip

CLIP = str(SAMPLE_CLIPS / "walk_02_01")
READ_ONLY = Path("/proc")  # no file can be made here, not even by root


def run(args: list[str]):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(res, *needles: str, code: int = 1) -> None:
    assert res.exit_code == code, res.output
    assert isinstance(res.exception, SystemExit), res.exception  # not a traceback
    lines = res.output.strip().splitlines()
    assert lines[-1].startswith("Error: "), res.output
    assert len([ln for ln in lines if ln.startswith("Error")]) == 1 and "Traceback" not in res.output
    for n in needles:
        assert n in lines[-1], res.output


@pytest.fixture
def tiny(tmp_path) -> Path:
    """A clip folder holding one 3-frame clip (with the sample's objects)."""
    clip = ClipFolder(SAMPLE_CLIPS).load("walk_02_01")
    assert clip.objects
    ClipFolder(tmp_path / "tiny", create=True).add(clip.slice(0, 3, name="tiny3"))
    return tmp_path / "tiny"


@pytest.fixture
def a_file(tmp_path) -> Path:
    (tmp_path / "a_file.txt").write_text("not a folder")
    return tmp_path / "a_file.txt"


@pytest.mark.parametrize("args, out, needle", [
    (["motion", "export", CLIP, "--out", "{dir}"], "{dir}", "a folder; give --out a file name"),
    (["motion", "export", CLIP, "--out", "{file}/w.bvh"], "{file}/w.bvh", "is a file"),
    (["motion", "mirror", CLIP + ".npz", "--out", "{file}"], "{file}", "a file, not a folder"),
    (["ego", "scenes", "--motions", SAMPLE_CLIPS, "--out", "{file}"], "{file}", "a file, not a folder"),
    (["ego", "build", "--motions", SAMPLE_CLIPS, "--out", "{file}/takes", "-j", "1"], "{file}/takes", "is a file"),
    (["uhc", "split", "--motions", SAMPLE_CLIPS, "--out", "{dir}"], "{dir}", "a folder; give --out a file name"),
    (["uhc", "split", "--motions", SAMPLE_CLIPS, "--out", "{file}/split.txt"], "{file}/split.txt", "is a file"),
    (["demo", "--out", "{file}", "--no-video"], "{file}", "a file, not a folder"),
])
def test_output_in_the_way_is_one_line_error(tmp_path, a_file, args, out, needle):
    (tmp_path / "dir").mkdir()
    before = sorted(tmp_path.rglob("*"))
    fill = {"dir": tmp_path / "dir", "file": a_file}
    res = run([str(a).format(**fill) for a in args])
    one_line_error(res, out.format(**fill), needle)
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, no temporary left


@pytest.mark.skipif(not READ_ONLY.is_dir(), reason="needs /proc")
@pytest.mark.parametrize("args", [
    ["motion", "export", CLIP, "--out", "/proc/x.bvh"],
    ["motion", "mirror", CLIP + ".npz", "--out", "/proc/x"],
    ["uhc", "split", "--motions", SAMPLE_CLIPS, "--out", "/proc/x.txt"],
])
def test_read_only_output_names_the_place(args):
    one_line_error(run(args), "cannot write in /proc", "choose another --out")


def test_read_only_video_is_one_line_error_not_ffmpeg_log(tiny):
    pytest.importorskip("kinpoly.visualization.render", exc_type=ImportError)
    from kinpoly.visualization.render import check_rendering

    if not READ_ONLY.is_dir() or check_rendering() is not None:
        pytest.skip("needs /proc and offscreen rendering")
    res = run(["render", tiny / "tiny3", "--out", "/proc/x.mp4", "-q", "--width", "32", "--height", "32"])
    one_line_error(res, "/proc/x.mp4: cannot write in /proc")
    assert "FFMPEG" not in res.output


def test_uhc_eval_checks_its_json_before_tracking(tiny, a_file, monkeypatch):
    import kinpoly.simulation.evaluate as evaluate

    monkeypatch.setattr(evaluate, "evaluate", lambda *a, **k: pytest.fail("tracked before the check"))
    res = run(["uhc", "eval", "--motions", tiny, "--json", a_file / "m.json", "--no-video"])
    one_line_error(res, f"{a_file}/m.json", "choose another --json")


def test_export_format_follows_the_file_name(tmp_path):
    res = run(["motion", "export", CLIP, "--out", tmp_path / "w.npz"])  # BVH text in a .npz before
    assert res.exit_code == 0, res.output
    with np.load(tmp_path / "w.npz") as z:
        assert z["positions"].shape[1:] == (24, 3)
    one_line_error(run(["motion", "export", CLIP, "--format", "npz", "--out", tmp_path / "w.bvh"]),
                   "--format npz writes a .npz file", "--format bvh")
    assert not (tmp_path / "w.bvh").exists()
    res = run(["motion", "export", CLIP, "--format", "amass", "--out", tmp_path / "a.npz"])
    assert res.exit_code == 0, res.output
    with np.load(tmp_path / "a.npz") as z:
        assert z["poses"].shape[1] == 72
    one_line_error(run(["motion", "export", CLIP, "--format", "amass", "--out", tmp_path / "a.bvh"]),
                   "--format amass writes a .npz file", "--format bvh")


def test_export_never_overwrites_the_clip_it_exports(tmp_path):
    src = tmp_path / "walk.npz"
    MotionClip.load(SAMPLE_CLIPS / "walk_02_01.npz").slice(0, 3, name="walk").save(src)
    data = src.read_bytes()
    one_line_error(run(["motion", "export", src, "--format", "npz", "--out", src]), "the clip being exported")
    assert src.read_bytes() == data
    MotionClip.load(src)


def test_empty_folders_are_refused_before_writing(tmp_path):
    (tmp_path / "empty").mkdir()
    empty = tmp_path / "empty"
    for args, needle in [
        (["motion", "mirror", empty, "--out", tmp_path / "o1"], "no clips to mirror"),
        (["ego", "scenes", "--motions", empty, "--out", tmp_path / "o2"], "no clips to place in scenes"),
        (["ego", "build", "--motions", empty, "--out", tmp_path / "o3", "-j", "1"], "no clips to build"),
        (["uhc", "split", "--motions", empty, "--out", tmp_path / "o4.txt"], "no clips to split"),
        (["uhc", "eval", "--motions", empty, "--json", tmp_path / "o5.json", "--no-video"], "no clips to track"),
        (["uhc", "bench", "--motions", empty, "--json", tmp_path / "o6.json"], "no clips to track"),
    ]:
        one_line_error(run(args), str(empty), needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_misspelt_clip_gets_a_suggestion_and_nothing_is_built(tmp_path):
    res = run(["ego", "build", "--motions", SAMPLE_CLIPS, "--clip", "walk_02_1", "--out", tmp_path / "ego"])
    one_line_error(res, "no clip named 'walk_02_1'", "did you mean 'walk_02_01'?")
    assert not (tmp_path / "ego").exists()  # was an empty take folder, exit 1 without a word


def test_uhc_eval_split_mistakes(tmp_path, tiny):
    (tmp_path / "typo.txt").write_text("# held out\ntiny03\n")
    one_line_error(run(["uhc", "eval", "--motions", tiny, "--split", tmp_path / "typo.txt",
                        "--json", tmp_path / "m.json", "--no-video"]), "'tiny03'", "did you mean 'tiny3'?")
    (tmp_path / "none.txt").write_text("# nothing\n")
    one_line_error(run(["uhc", "eval", "--motions", tiny, "--split", tmp_path / "none.txt",
                        "--json", tmp_path / "m.json", "--no-video"]), "the split lists no clips")
    one_line_error(run(["uhc", "eval", "--motions", tiny, "--split", tmp_path / "missing.txt",
                        "--json", tmp_path / "m.json", "--no-video"]), "missing.txt: no such split file")
    # a clip file with a split that does not list it: the split applies (it was ignored)
    one_line_error(run(["uhc", "eval", "--motions", tiny / "tiny3.npz", "--split", tmp_path / "typo.txt",
                        "--json", tmp_path / "m.json", "--no-video"]), "did you mean 'tiny3'?")
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("args, needle", [
    (["ego", "build", "--motions", SAMPLE_CLIPS, "--out", "{tmp}/e", "--limit", "0"], "--limit"),
    (["ego", "build", "--motions", SAMPLE_CLIPS, "--out", "{tmp}/e", "--set", "fovy=-5"], "fovy -5"),
    (["uhc", "split", "--motions", SAMPLE_CLIPS, "--out", "{tmp}/s.txt", "--fraction", "0"], "--fraction"),
    (["uhc", "bench", "--motions", SAMPLE_CLIPS, "--json", "{tmp}/b.json", "--seconds", "0"], "--seconds"),
    (["uhc", "bench", "--motions", "{tmp}", "--json", "{tmp}/b.json", "--config", "{tmp}/no.yaml"],
     "no.yaml: no such config file"),  # was silently the defaults
])
def test_settings_out_of_range_are_refused(tmp_path, args, needle):
    res = run([str(a).format(tmp=tmp_path) for a in args])
    one_line_error(res, needle, code=2 if needle.startswith("--") else 1)
    assert sorted(tmp_path.iterdir()) == []


def test_uhc_export_of_a_shipped_policy_writes_nothing(tmp_path):
    res = run(["uhc", "export", "--run", CHECKPOINTS / "uhc",
               "--checkpoint", "policy.pt", "--out", tmp_path / "ship"])
    one_line_error(res, "policy.pt: not a controller training checkpoint", "uhc train --out")
    assert not (tmp_path / "ship").exists()  # was an empty folder and a KeyError traceback


def test_ego_features_rewrites_no_take_when_one_lacks_flows(tmp_path):
    import shutil

    from kinpoly.egocentric.take import EgoTake, read_manifest

    shutil.copytree(SAMPLE_TAKES, tmp_path / "takes")
    files = [tmp_path / "takes" / e["file"] for e in read_manifest(tmp_path / "takes")["takes"]]
    first = EgoTake.load(files[0])  # flows for the first take only
    first.extras["flow"] = np.zeros((first.num_frames - 1, 2, 32, 32), np.float16)
    first.save(files[0])
    before = [f.read_bytes() for f in files]
    one_line_error(run(["ego", "features", tmp_path / "takes"]), f"{files[1]}: no stored flows")
    assert [f.read_bytes() for f in files] == before


def test_file_errors_the_system_raises_are_one_line():
    """A refused path anywhere under a command is its message; an OSError about no path stays a
    traceback (a bug)."""
    def command(exc):
        def fail():
            raise exc
        return Command("c", callback=fail)

    for exc, text in [(PermissionError(13, "Permission denied", "/x/y"), "Error: /x/y: Permission denied"),
                      (IsADirectoryError(21, "Is a directory", "/tmp/.t.tmp", None, "/out"), "Error: /out: Is a directory")]:
        res = CliRunner().invoke(command(exc), [])
        assert res.exit_code == 1 and res.output.strip() == text, res.output
    res = CliRunner().invoke(command(ConnectionResetError(104, "Connection reset by peer")), [])
    assert isinstance(res.exception, ConnectionResetError)


def test_clip_names_and_checkpoints_of_the_wrong_kind(tmp_path):
    """A misspelt clip in FOLDER/name gets a suggestion, a folder given as a clip says so, a text
    file given as a checkpoint is one line, and `train export` checks OUT before reading."""
    from kinpoly.config import PACKAGE_DIR, read_checkpoint
    from kinpoly.errors import InputError
    from kinpoly.motion.clip import ClipError, resolve_clip

    clips = PACKAGE_DIR / "assets" / "clips"
    with pytest.raises(ClipError, match=r"did you mean 'walk_02_01'\?"):
        resolve_clip(clips / "walk_02_1")
    with pytest.raises(ClipError, match="a folder; give one clip"):
        resolve_clip(clips)
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n" * 20)
    with pytest.raises(InputError, match="not a kinematic policy"):
        read_checkpoint(text, "kinematic policy")
    res = CliRunner().invoke(main, ["train", "export", str(PACKAGE_DIR / "checkpoints" / "kinematic" / "policy.pt"),
                                    str(text / "policy.pt")])  # under a file
    assert res.exit_code == 1 and f"{text} is a file; choose another OUT" in res.output
