"""edgeaffect: real-time facial affect analysis on embedded devices.

    from edgeaffect import Analyzer, AnalyzerOptions, RunningMode
    with Analyzer.create(AnalyzerOptions(running_mode=RunningMode.VIDEO, max_faces=1)) as a:
        result = a.process(frame_bgr, timestamp_ms)   # FrameResult; result.to_dict() is one JSON line
"""

from .analyzer import Analyzer, AnalyzerOptions, RunningMode
from .constants import AU_NAMES
from .errors import EdgeAffectError
from .results import FaceResult, FrameResult
from .runtime.factory import BaseOptions

__version__ = "0.1.0"
__all__ = ["Analyzer", "AnalyzerOptions", "BaseOptions", "RunningMode", "FrameResult", "FaceResult", "AU_NAMES", "EdgeAffectError", "__version__"]
