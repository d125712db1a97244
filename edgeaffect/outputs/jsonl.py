"""JSON Lines output: one FrameResult per line (schema in README.md, "Output schema")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..results import FrameResult, json_line
from ._safe import SafeAppender


class JsonlWriter:
    def __init__(self, path: str | Path, header: dict[str, Any] | None = None) -> None:
        self._out = SafeAppender(path)
        self.path = self._out.path
        self.count = 0
        if header is not None:
            # The header line carries run metadata (models, placement); it has no frame_index.
            self._out.append((json.dumps({"header": header}, separators=(",", ":")) + "\n").encode())

    def write(self, result: FrameResult | dict[str, Any]) -> None:
        d = result.to_dict() if isinstance(result, FrameResult) else result
        self._out.append(json_line(d))
        self.count += 1

    def close(self) -> None:
        self._out.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_jsonl(path: str | Path, *, frames_only: bool = True) -> Iterator[dict[str, Any]]:
    with open(path) as fh:
        for line in fh:
            d = json.loads(line)
            if frames_only and ("header" in d or "event" in d):  # run metadata, event / status lines
                continue
            yield d
