"""Benchmarks: per-module (benchmark_model style), end-to-end single stream (MLPerf style),
side by side with MediaPipe, device fingerprints, JSON/Markdown/PNG reports and comparisons.

Device-safe: numpy, OpenCV, the stdlib and the LiteRT interpreter; matplotlib (plots),
psutil and mediapipe (comparison) are optional and imported only when used.
CLI: `edgeaffect bench ...` (edgeaffect.bench.cli.bench_main); docs: benchmarks/README.md.
"""

from .report import SCHEMA
from .stats import PERCENTILE_METHOD, summarize

__all__ = ["SCHEMA", "PERCENTILE_METHOD", "summarize"]
