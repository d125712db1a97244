"""End-to-end fleet example: the shared clip -> `edgeaffect run --dms --kiosk --mqtt` -> a local
Mosquitto broker -> a subscriber and `edgeaffect fleet`. Writes examples/fleet/example.md and
the README block between `<!-- fleet-example:begin -->` and `<!-- fleet-example:end -->`.

    python scripts/fleet_example.py [--video ../shared/data/video/short_hamilton_clip.mp4]

Needs the `mosquitto` binary (apt-get install -y mosquitto mosquitto-clients) and paho-mqtt
(pip install -e '.[mqtt]'). Everything printed comes from this run: nothing is typed in.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT_MD = REPO / "examples" / "fleet" / "example.md"
BEGIN, END = "<!-- fleet-example:begin -->", "<!-- fleet-example:end -->"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", default=str(REPO.parent / "shared" / "data" / "video" / "short_hamilton_clip.mp4"))
    ap.add_argument("--no-readme", action="store_true")
    a = ap.parse_args()
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        print("mosquitto is not installed (apt-get install -y mosquitto mosquitto-clients)", file=sys.stderr)
        return 2
    import paho.mqtt.client as mqtt

    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="edgeaffect-fleet-"))
    broker = subprocess.Popen([exe, "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    msgs: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="example-viewer")
    got_suback = threading.Event()
    sub.on_connect = lambda c, *_: c.subscribe("edgeaffect/#", qos=1)
    sub.on_subscribe = lambda *_: got_suback.set()

    def on_message(_c, _u, m) -> None:
        with lock:
            msgs.append((m.topic, bytes(m.payload)))

    sub.on_message = on_message
    try:
        for _ in range(100):
            try:
                sub.connect("127.0.0.1", port, 10)
                break
            except OSError:
                time.sleep(0.05)
        sub.loop_start()
        got_suback.wait(5)
        url = f"mqtt://127.0.0.1:{port}"
        run_cmd = ["edgeaffect", "run", "--source", "VIDEO", "--out", "OUT", "--dms", "--kiosk", "--mqtt", url,
                   "--mqtt-device", "demo-car", "--mqtt-frames-hz", "2", "--mqtt-stats-s", "2"]
        argv = [sys.executable, "-m", "edgeaffect.cli", *run_cmd[1:]]
        argv[argv.index("VIDEO")] = a.video
        argv[argv.index("OUT")] = str(work / "out")
        run = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
        if run.returncode != 0:
            print(run.stdout, run.stderr, file=sys.stderr)
            return run.returncode
        time.sleep(1.0)
        fleet_cmd = ["edgeaffect", "fleet", "--mqtt", url, "--devices", "demo-car", "--wait", "5", "--no-plots"]
        fleet = subprocess.run([sys.executable, "-m", "edgeaffect.cli", *fleet_cmd[1:]], capture_output=True, text=True, cwd=REPO)
    finally:
        sub.disconnect()
        sub.loop_stop()
        broker.terminate()
        broker.wait(5)
    with lock:
        seen = list(msgs)
    counts = Counter(t for t, _ in seen)
    parsed = {t: [json.loads(p) if p[:1] == b"{" else p.decode() for tt, p in seen if tt == t] for t in counts}
    events = [(d["data"]["event"], d["data"]["phase"], d["data"]["id"], d["data"]["start_ms"], d["data"]["end_ms"])
              for d in parsed.get("edgeaffect/demo-car/events", [])]
    driver = parsed.get("edgeaffect/demo-car/driver", [])
    stats = parsed.get("edgeaffect/demo-car/stats", [])
    frame = parsed.get("edgeaffect/demo-car/frames", [None])[0]
    lines = [
        f"Made by `python scripts/fleet_example.py` on `{Path(a.video).name}` with a local Mosquitto broker.", "",
        "Commands (URL = the broker's `mqtt://127.0.0.1:PORT`):", "",
        "```bash",
        " ".join(run_cmd).replace(url, "$URL").replace("VIDEO", "../shared/data/video/" + Path(a.video).name).replace("OUT", "out/"),
        " ".join(fleet_cmd).replace(url, "$URL"),
        "```", "",
        "The run printed:", "", "```",
        *[ln.replace(str(work / "out"), "out").replace(url, "$URL") for ln in run.stdout.splitlines()
          if ln.strip() and "spool " not in ln], "```", "",
        "Messages the subscriber received per topic:", "",
        "| topic | messages |", "|---|---|", *[f"| `{t}` | {n} |" for t, n in sorted(counts.items())], "",
        "Events (`event`, `phase`, `id`, `start_ms`, `end_ms`):", "",
        "```", *[str(e) for e in events], "```", "",
        f"Driver state published on change ({len(driver)} times); the last one:", "",
        "```json", json.dumps(driver[-1]["data"] if driver else None, indent=None)[:1200], "```", "",
        "One `frames` envelope (landmarks left out on the network), cut:", "",
        "```json", json.dumps(frame)[:600] + " ...", "```", "",
        "The last `stats` payload:", "",
        "```json", json.dumps({k: v for k, v in (stats[-1]["data"] if stats else {}).items() if k != "models"}), "```", "",
        "`edgeaffect fleet` printed (its Markdown):", "", "```text", *fleet.stdout.splitlines(), "```", "",
    ]
    text = "\n".join(lines)
    OUT_MD.parent.mkdir(parents=True, exist_ok=True)
    OUT_MD.write_text(text)
    print(f"wrote {OUT_MD}")
    if not a.no_readme:
        readme = REPO / "README.md"
        r = readme.read_text()
        if BEGIN in r and END in r:
            head, rest = r.split(BEGIN, 1)
            _, tail = rest.split(END, 1)
            readme.write_text(head + BEGIN + "\n" + text + "\n" + END + tail)
            print(f"updated the fleet example block in {readme}")
        else:
            print(f"README has no {BEGIN} block: not updated")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
