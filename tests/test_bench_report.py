"""edgeaffect.bench: report schema, fingerprint, Markdown/PNG rendering, compare, MediaPipe-absent path."""

from __future__ import annotations

import builtins
import json
import sys

import numpy as np
import pytest

from edgeaffect.bench import compare, fingerprint, report
from edgeaffect.bench.stats import summarize
from edgeaffect.errors import EdgeAffectError


def fake_report(label: str, scale: float = 1.0, fps: float = 50.0, sha: str = "a" * 64) -> dict:
    fp = fingerprint.collect(num_threads=1)
    fp["models"] = {"landmarks": {"file": "landmarks_int8.tflite", "sha256": sha, "variant": "int8", "kind": "landmarks",
                                  "macs": 30_000_000, "params": 1000, "stand_in": False}}
    r = report.new_report("e2e", label, fp, {"source": "clip.mp4", "min_frames": 100}, f"edgeaffect bench --label {label}")
    lat = np.linspace(10, 30, 200) * scale
    r["e2e"] = {
        "frames": 200, "wall_s": 200 / fps, "latency_ms": summarize(lat), "cpu_ms": summarize(lat * 0.9),
        "throughput_fps": fps, "service_fps": 1000 / float(lat.mean()), "status_counts": {"ok": 200},
        "stages_ms": {"track": summarize(lat / 2)}, "detector_frames": 7,
        "system": {"cpu_utilisation_cores": 0.98, "peak_rss_mb": 120.0, "loadavg_start": [0.2, 0.3, 0.3],
                   "temp_c": {"start": 40.0, "max": 51.5, "end": 50.0}, "throttled_any": False},
        "source": {"name": "clip.mp4", "width": 640, "height": 360, "clip_frames": 275, "preloaded": True},
        "criteria": {"min_frames": 100, "min_seconds": 0, "met": True},
        "series": {"t_s": list(np.cumsum(lat) / 1000), "latency_ms": list(lat),
                   "system": {"t_s": [0, 1, 2], "rss_mb": [100, 101, 101], "temp_c": [40, 45, 50]}},
    }
    return r


def test_schema_required_keys_and_validation():
    r = fake_report("dev")
    assert r["schema"] == "edgeaffect.bench/1" == report.SCHEMA
    assert report.validate(r) == []
    for k in report.REQUIRED_KEYS:
        assert k in r
    bad = dict(r)
    del bad["fingerprint"]
    bad["schema"] = "edgeaffect.bench/0"
    errs = report.validate(bad)
    assert any("fingerprint" in e for e in errs) and any("schema" in e for e in errs)
    no_result = {k: v for k, v in r.items() if k != "e2e"}
    assert any("no result section" in e for e in report.validate(no_result))
    broken = fake_report("x")
    del broken["e2e"]["latency_ms"]["p90"]
    assert any("p90" in e for e in report.validate(broken))


def test_fingerprint_fields_are_present_and_json_safe():
    fp = fingerprint.collect(num_threads=2, delegates=["xnnpack"])
    for k in ("machine", "cpu", "os", "python", "packages", "interpreter", "models"):
        assert k in fp
    for k in ("model", "logical_cores", "governor", "int8_features"):
        assert k in fp["cpu"]
    assert fp["packages"]["numpy"] == np.__version__
    assert fp["interpreter"]["num_threads"] == 2
    json.dumps(fp)
    assert fingerprint.short_name(fp)


def test_cpuinfo_parsing_x86_and_pi():
    x86 = fingerprint._cpuinfo("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2 fma hypervisor\n")
    assert x86["model"] == "AMD EPYC 7B13" and x86["features"] == ["avx2", "fma"] and x86["hypervisor"]
    pi = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU part\t: 0xd08\n" * 4 + "Model\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
    p = fingerprint._cpuinfo(pi)
    assert p["cores_by_name"] == {"Cortex-A72": 4} and "Raspberry Pi 4" in p["model"] and p["features"] == ["asimd"]


def test_save_writes_json_markdown_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    r = fake_report("dev-box")
    paths = report.save(r, tmp_path, "dev-box")
    d = report.load(paths["json"])
    assert d["schema"] == report.SCHEMA and d["label"] == "dev-box"
    md = (tmp_path / "dev-box.md").read_text()
    assert "p90" in md and "Device fingerprint" in md and "dev-box_latency_hist.png" in md
    assert {p.split("/")[-1] for p in paths["plots"]} >= {"dev-box_latency_hist.png", "dev-box_timeseries.png"}
    for p in paths["plots"]:
        with open(p, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plots_skipped_with_message_without_matplotlib(tmp_path, monkeypatch):
    real = builtins.__import__

    def no_mpl(name, *a, **k):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    paths = report.save(fake_report("nompl"), tmp_path, "nompl")
    assert paths["plots"] == [] and "matplotlib" in paths["plot_message"]
    d = json.loads((tmp_path / "nompl.json").read_text())
    assert any("matplotlib" in n for n in d["notes"])


def test_load_rejects_non_reports(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"schema": "something/1"}))
    with pytest.raises(EdgeAffectError, match="not an edgeaffect.bench/1 report"):
        report.load(p)
    with pytest.raises(EdgeAffectError, match="not found"):
        report.load(tmp_path / "missing.json")


def test_compare_table_has_both_runs_and_right_ratios(tmp_path):
    a, b = fake_report("pi5"), fake_report("pi4", scale=2.0, fps=25.0)
    pa, pb = report.write_json(a, tmp_path / "a.json"), report.write_json(b, tmp_path / "b.json")
    res = compare.compare_files([pa, pb], tmp_path / "cmp", plots=False)
    md = res["markdown"]
    assert "| pi5 (base) |" in md and "| pi4 |" in md
    row = next(line for line in md.splitlines() if line.startswith("| pi4 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    header = [c.strip() for c in md.splitlines()[next(i for i, line in enumerate(md.splitlines()) if line.startswith("| label"))].strip("|").split("|")]
    assert cells[header.index("p90 / base")] == "2.00x"
    assert cells[header.index("fps / base")] == "0.50x"
    assert cells[header.index("p90 ms")] == f"{2 * a['e2e']['latency_ms']['p90']:.2f}"
    assert (tmp_path / "cmp" / "compare.md").exists()
    rows = compare.compare_rows([report.load(pa), report.load(pb)])
    assert rows[1]["p90_vs_base"] == pytest.approx(2.0) and rows[0]["is_base"]


def test_compare_flags_different_models_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    a, b = fake_report("A"), fake_report("B", sha="b" * 64)
    pa, pb = report.write_json(a, tmp_path / "a.json"), report.write_json(b, tmp_path / "b.json")
    res = compare.compare_files([pa, pb], tmp_path, plots=True)
    assert "DIFFERENT" in res["markdown"] and res["plot"] and (tmp_path / "compare.png").exists()


def test_compare_cli(tmp_path, capsys):
    from edgeaffect.bench.cli import bench_main

    pa = report.write_json(fake_report("one"), tmp_path / "1.json")
    pb = report.write_json(fake_report("two", scale=0.5, fps=100), tmp_path / "2.json")
    assert bench_main(["compare", str(pa), str(pb), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "| one (base) |" in out and "0.50x" in out and "2.00x" in out


def test_e2e_cli_missing_source_is_a_user_error(tmp_path):
    from edgeaffect.bench.cli import bench_main

    with pytest.raises(EdgeAffectError, match="does not exist"):
        bench_main(["--source", str(tmp_path / "nope.mp4"), "--out", str(tmp_path)])


# ----------------------------------------------------------------------------- MediaPipe absent
def _fake_edgeaffect():
    from edgeaffect.bench.vs_mediapipe import Contender

    return Contender("edgeaffect", "fake pipeline", lambda img, ts: True)


def test_mediapipe_missing_skips_comparison_and_the_rest_runs(monkeypatch, tmp_path):
    from edgeaffect.bench import vs_mediapipe

    monkeypatch.setitem(sys.modules, "mediapipe", None)  # `import mediapipe` now raises ImportError
    mp, reason = vs_mediapipe.import_mediapipe()
    assert mp is None and "mediapipe" in reason
    msgs = []
    frames = [np.zeros((64, 64, 3), np.uint8)] * 12
    res = vs_mediapipe.run_vs_mediapipe(frames, 30.0, edgeaffect=_fake_edgeaffect, rounds=2, warmup=2, pin_cpu=None,
                                        progress=msgs.append)
    assert res["skipped"] and "mediapipe" in res["reason"]
    assert any("skipped" in m for m in msgs)
    ea = res["contenders"]["edgeaffect"]
    assert ea["frames"] == 12 * 2 - 2 and ea["fps"] > 0 and ea["face_rate"] == 1.0
    assert res["contenders"]["mediapipe"]["skipped"] and res["ratios"] == []
    # the report still renders, with the reason
    r = fake_report("nomp")
    r["vs_mediapipe"] = res
    md = report.render_markdown(r)
    assert "MediaPipe part skipped" in md and "edgeaffect" in md


def test_mediapipe_ratio_math_with_fake_contenders(monkeypatch):
    from edgeaffect.bench import vs_mediapipe

    class FakeMP:
        __version__ = "fake"

    def slow(ms):
        def p(img, ts):
            t0 = __import__("time").perf_counter()
            while (__import__("time").perf_counter() - t0) * 1000 < ms:
                pass
            return True

        return p

    def fake_contenders(mp, both=True, refine=False, task_path=None):
        return [vs_mediapipe.Contender("mediapipe_face_mesh", "fake", slow(3.0)),
                vs_mediapipe.Contender("mediapipe_detection_mesh", "fake", slow(6.0))], {}

    monkeypatch.setattr(vs_mediapipe, "mediapipe_contenders", fake_contenders)
    res = vs_mediapipe.run_vs_mediapipe([np.zeros((8, 8, 3), np.uint8)] * 20, 30.0,
                                        edgeaffect=lambda: vs_mediapipe.Contender("edgeaffect", "fake", slow(1.0)),
                                        rounds=1, warmup=0, pin_cpu=None, mediapipe_importer=lambda: (FakeMP, None))
    r = {x["vs"]: x for x in res["ratios"]}
    # the yardstick is face mesh alone; detection + mesh is only an extra row
    assert r["mediapipe_face_mesh"]["primary"] and not r["mediapipe_detection_mesh"]["primary"]
    # ordering only (the contenders busy-wait 1 / 3 / 6 ms): no wall-clock bounds in tests
    assert r["mediapipe_detection_mesh"]["fps_ratio"] > r["mediapipe_face_mesh"]["fps_ratio"] > 1.0
    fm = r["mediapipe_face_mesh"]
    assert fm["goal"] == 2.0 and fm["goal_met"] == (fm["fps_ratio"] >= 2.0 and fm["faces_at_least_as_many"])
    assert r["mediapipe_detection_mesh"]["goal"] is None and r["mediapipe_detection_mesh"]["goal_met"] is None
    assert len(fm["round_fps_ratios"]) == 1 and fm["median_round_fps_ratio"] == fm["round_fps_ratios"][0]
    assert fm["cpu_ratio"] is not None and fm["p50_ratio"] is not None
    assert res["mediapipe_version"] == "fake"
    md = "\n".join(report.vs_mediapipe_md(res))
    assert "extra row: not the yardstick" in md and "goal >= 2.0x" in md


# ----------------------------------------------------------------------------- MediaPipe present
def test_mediapipe_present_yardstick_is_face_mesh_tracking(tmp_path, capsys):
    """Real MediaPipe (installed by the dev extra on x86_64): the CLI measures face mesh alone in
    tracking mode as the yardstick, counts faces from landmarks, labels detection+mesh as extra."""
    pytest.importorskip("mediapipe")
    from edgeaffect.bench import vs_mediapipe
    from edgeaffect.bench.cli import bench_main
    from edgeaffect.demo import write_demo_clip

    mp, reason = vs_mediapipe.import_mediapipe()
    if mp is None:
        pytest.skip(reason)
    clip = write_demo_clip(tmp_path / "astronaut.mp4", n_frames=8)
    rc = bench_main(["mediapipe", "--source", str(clip), "--rounds", "2", "--warmup", "1", "--label", "mp",
                     "--out", str(tmp_path), "--no-plots", "--no-pin"])
    assert rc == 0
    d = report.load(tmp_path / "mp.json")
    v = d["vs_mediapipe"]
    assert not v.get("skipped") and v["mediapipe_version"]
    cs = v["contenders"]
    assert {"edgeaffect", "mediapipe_face_mesh", "mediapipe_detection_mesh"} <= set(cs)
    fm = cs["mediapipe_face_mesh"]
    assert fm["config"]["face_mesh"]["static_image_mode"] is False and fm["config"]["role"] == "yardstick"
    assert fm["frames"] == 8 * 2 - 1 and 0 < fm["face_rate"] <= 1.0 and len(fm["round_fps"]) == 2
    assert cs["mediapipe_detection_mesh"]["what"].startswith("EXTRA ROW")
    primary = [r for r in v["ratios"] if r["primary"]]
    assert [r["vs"] for r in primary] == ["mediapipe_face_mesh"]
    assert primary[0]["goal"] == 2.0 and isinstance(primary[0]["faces_at_least_as_many"], bool)
    # the 0.10.21 wheel carries no face_landmarker.task: reported, not downloaded
    fl = v["mediapipe_notes"]["face_landmarker_video"]
    assert fl["available"] or "task" in fl["reason"]
    md = (tmp_path / "mp.md").read_text()
    assert "the yardstick" in md and "extra row" in md
