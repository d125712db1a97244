"""README and profile docs for the driver / kiosk / fleet layers cannot drift from the code."""

from __future__ import annotations

from pathlib import Path

from edgeaffect.configspec import describe
from edgeaffect.dms.config import DmsConfig
from edgeaffect.kiosk.config import KioskConfig
from edgeaffect.profiles import load_profile

REPO = Path(__file__).resolve().parents[1]


def test_readme_fleet_example_is_the_scripts_output():
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- fleet-example:begin -->\n", 1)[1].split("\n<!-- fleet-example:end -->", 1)[0]
    assert block == (REPO / "examples" / "fleet" / "example.md").read_text()
    assert "edgeaffect/demo-car/frames" in block and "edgeaffect fleet" in block


def test_every_dms_and_kiosk_key_is_documented_with_its_default():
    doc = (REPO / "firmware_configs" / "README.md").read_text()
    for cls in (DmsConfig, KioskConfig):
        for key, default, text in describe(cls):
            shown = str(default).lower() if isinstance(default, bool) else str(default)
            assert f"`{key}` = {shown} (" in doc, key
            assert text, f"{cls.__name__}.{key} has no doc"


def test_every_telemetry_key_is_documented_with_its_default():
    from edgeaffect.telemetry.config import TelemetryConfig

    doc = (REPO / "firmware_configs" / "README.md").read_text()
    for key, default, text in describe(TelemetryConfig):
        shown = str(default).lower() if isinstance(default, bool) else (f'"{default}"' if isinstance(default, str) else str(default))
        assert f"`{key}` = {shown} ({text})" in doc, key


def test_rpi5_profile_carries_dms_thresholds():
    p = load_profile("rpi5")
    assert p.dms is not None and p.dms.default_yaw_offset_deg != 0.0


def test_readme_driver_monitor_snippet_runs(assets):
    import numpy as np

    from edgeaffect import Analyzer, AnalyzerOptions

    readme = (REPO / "README.md").read_text()
    code = readme.split("From Python, the same layer", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    frame = np.full((240, 320, 3), 90, np.uint8)
    with Analyzer(AnalyzerOptions(max_faces=1)) as analyzer:
        ns = {"analyzer": analyzer, "frame_bgr": frame, "timestamp_ms": 0.0, "width": 320, "height": 240}
        exec(compile(code, "README.md", "exec"), ns)
    assert ns["result"].driver is not None and ns["result"].to_dict()["driver"]["face_detected"] is False
