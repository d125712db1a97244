"""JSON Lines output: one FrameResult per line (schema in README.md, "Output schema").

The writer encodes; where the bytes go is a `Sink`: one file (`SafeAppender`, the default
when given a path) or a rotating stream of a `SegmentStore` (outputs/segments.py).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..results import FrameResult, json_line
from ._safe import SafeAppender
from .segments import Sink


class JsonlWriter:
    def __init__(self, path: str | Path | Sink, header: dict[str, Any] | None = None) -> None:
        self._out: Sink = SafeAppender(path) if isinstance(path, (str, Path)) else path
        self.path = self._out.path
        self.count = 0
        if header is not None:
            # The header line carries run metadata (models, placement); it has no frame_index.
            self._out.append((json.dumps({"header": header}, separators=(",", ":")) + "\n").encode())

    def write(self, result: FrameResult | dict[str, Any], frame_index: int | tuple[int, int] | None = None) -> None:
        d = result.to_dict() if isinstance(result, FrameResult) else result
        fi = d.get("frame_index") if frame_index is None else frame_index
        self._out.append(json_line(d), fi if isinstance(fi, int) else None)
        self.count += 1

    def write_event(self, d: dict[str, Any]) -> None:
        """A status/event line (no frame_index): read_jsonl skips it unless frames_only=False."""
        self._out.append(json_line(d))

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        self._out.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_jsonl(path: str | Path, *, frames_only: bool = True) -> Iterator[dict[str, Any]]:
    """Lines of a .jsonl or .jsonl.gz file; frames_only skips header and status (event) lines."""
    p = Path(path)
    with (gzip.open(p, "rt") if p.suffix == ".gz" else open(p)) as fh:
        for line in fh:
            d = json.loads(line)
            if frames_only and ("header" in d or "event" in d):  # run metadata, event / status lines
                continue
            yield d
