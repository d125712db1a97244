"""The CLI end to end (subprocesses, as a user runs it)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import VIDEO


def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeaffect.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_demo_runs_without_arguments_beyond_out(assets, tmp_path):
    p = run("demo", "--out", str(tmp_path / "demo"), "--frames", "60")
    assert p.returncode == 0, p.stderr
    lines = (tmp_path / "demo" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 60
    frames = [json.loads(x) for x in lines]
    assert sum(f["status"] == "ok" for f in frames) > 30
    assert (tmp_path / "demo" / "overlay.mp4").stat().st_size > 10_000
    assert (tmp_path / "demo" / "results.csv").exists()
    assert "demo" in p.stdout and "results.jsonl" in p.stdout
    for name in ("run.json", "summary.json", "results.csv", "overlay.mp4"):  # every file written is listed
        assert name in p.stdout and (tmp_path / "demo" / name).exists(), name
    codec = json.loads((tmp_path / "demo" / "summary.json").read_text())["extra"]["overlay_codec"]
    assert codec in ("avc1", "mp4v") and ("no H.264 encoder" in p.stdout) == (codec != "avc1")


@pytest.mark.shared_data
def test_run_on_the_shared_video_writes_275_lines(assets, shared_data, tmp_path):
    p = run("run", "--source", str(VIDEO), "--out", str(tmp_path / "o"), "--max-faces", "1")
    assert p.returncode == 0, p.stderr
    lines = (tmp_path / "o" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 275
    assert all(json.loads(x)["frame_index"] == i for i, x in enumerate(lines))
    run_meta = json.loads((tmp_path / "o" / "run.json").read_text())
    assert set(run_meta["models"]) == {"detector", "landmarks", "eyes", "au", "temporal"}


def test_unreadable_video_is_a_one_line_error(assets, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    p = run("run", "--source", str(bad), "--out", str(tmp_path / "o"))
    assert p.returncode != 0
    assert "Traceback" not in p.stderr and "edgeaffect: error:" in p.stderr


def test_missing_video_is_a_one_line_error(assets, tmp_path):
    p = run("run", "--source", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o"))
    assert p.returncode != 0 and "Traceback" not in p.stderr and "no such video file" in p.stderr


def test_bad_models_dir_is_a_one_line_error(tmp_path):
    p = run("demo", "--out", str(tmp_path / "o"), "--models-dir", str(tmp_path))
    assert p.returncode != 0 and "Traceback" not in p.stderr and "manifest" in p.stderr


@pytest.mark.shared_data
@pytest.mark.parametrize("profile", ["x86-dev", "rpi5", "rpi5-coral"])
def test_run_with_device_profile(assets, shared_data, tmp_path, profile):
    """Profiles for hardware that is not here fall back to the CPU with warnings, and say so."""
    p = run("run", "--profile", profile, "--source", str(VIDEO), "--out", str(tmp_path / "o"), "--max-frames", "40")
    assert p.returncode == 0, p.stderr
    assert "placement" in p.stdout.lower()
    lines = (tmp_path / "o" / "results.jsonl").read_text().splitlines()
    assert 0 < len(lines) <= 40
    idx = [json.loads(x)["frame_index"] for x in lines]
    assert idx == sorted(set(idx))  # in order, none duplicated
    meta = json.loads((tmp_path / "o" / "run.json").read_text())
    assert meta["profile"] == profile and "placement" in meta


@pytest.mark.parametrize("where", ["file", "proc", "under_a_file"])
def test_bad_out_is_one_line_and_nothing_loads(tmp_path, where):
    """--out pointing at a file, at a place that cannot hold a directory: one line, non-zero exit, the file untouched."""
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    out = {"file": str(f), "proc": "/proc/edgeaffect-test/out", "under_a_file": str(f / "out")}[where]
    p = run("demo", "--out", out, "--frames", "5")
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeaffect: error:") and "--out" in lines[0], p.stderr
    assert f.read_text() == "keep me"


def test_demo_help_names_its_own_defaults():
    p = run("demo", "--help")
    assert p.returncode == 0
    text = " ".join(p.stdout.split())
    assert "./edgeaffect-demo" in text and "edgeaffect-out" not in text
    assert "--overlay, --no-overlay write overlay.mp4" in text and "(default: on)" in text
    r = " ".join(run("run", "--help").stdout.split())
    assert "./edgeaffect-out" in r and "(default: off)" in r


def test_bench_help_lists_mediapipe_once():
    p = run("bench", "--help")
    assert p.returncode == 0
    assert p.stdout.count("side by side vs MediaPipe") == 1 and "mediapipe (vs-mediapipe)" in p.stdout
    assert run("bench", "vs-mediapipe", "--help").returncode == 0


def _run_on_a_terminal(*args: str) -> str:
    """Run the CLI with stdout/stderr on a pseudo-terminal, as in an interactive shell."""
    import os
    import pty

    leader, follower = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "edgeaffect.cli", *args], stdout=follower, stderr=follower,
                         env={**os.environ, "COLUMNS": "120"})
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    assert p.wait(timeout=300) == 0
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal_only(assets, tmp_path):
    shown = _run_on_a_terminal("demo", "--out", str(tmp_path / "a"), "--frames", "20", "--no-overlay")
    assert "/20 frames" in shown and "fps" in shown and "%" in shown and "\r" in shown
    quiet = _run_on_a_terminal("demo", "--out", str(tmp_path / "b"), "--frames", "20", "--no-overlay", "-q")
    assert "/20 frames" not in quiet and "20 frames (" in quiet
    piped = run("demo", "--out", str(tmp_path / "c"), "--frames", "20", "--no-overlay")
    assert "/20 frames" not in piped.stderr + piped.stdout


@pytest.mark.parametrize("args", [("demo", "--frames", "0"), ("demo", "--threads", "0"), ("demo", "--max-faces", "two"),
                                  ("run", "--source", "x.mp4", "--max-frames", "-1")])
def test_counts_below_one_are_usage_errors(args, tmp_path):
    p = run(*args, "--out", str(tmp_path / "o"))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith(f"edgeaffect {args[0]}: error: argument")
    assert not (tmp_path / "o").exists()  # nothing written for a command that cannot run


def test_readme_states_the_demo_defaults():
    """README's demo paragraph names the clip length and output folder the CLI actually uses."""
    from pathlib import Path

    from edgeaffect.cli import DEMO_OUT, build_parser

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    frames = build_parser().parse_args(["demo"]).frames
    assert f"It builds a {frames}-frame clip" in readme and f"`{DEMO_OUT}/{{results.jsonl," in readme
