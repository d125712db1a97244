"""Side by side: edgeaffect's full pipeline vs MediaPipe face mesh in tracking mode (the yardstick), one core.

    python benchmarks/vs_mediapipe.py --source ../shared/data/video/short_hamilton_clip.mp4 [--rounds 3]
                                      [--models-dir DIR] [--label NAME] [--out DIR] [--no-pin]

Same as `edgeaffect bench mediapipe ...` (all options pass through); the method is described in
edgeaffect/bench/vs_mediapipe.py and benchmarks/README.md. Without mediapipe installed the
MediaPipe part is skipped with a message and edgeaffect's numbers are still reported.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeaffect.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", "mediapipe", *sys.argv[1:]]))
