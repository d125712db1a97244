"""Result writers: JSONL (one line per frame), CSV (one row per face), overlay video."""

from .csv_writer import CsvWriter, csv_columns
from .jsonl import JsonlWriter, read_jsonl
from .overlay import OverlayRenderer, OverlayVideoWriter

__all__ = ["JsonlWriter", "read_jsonl", "CsvWriter", "csv_columns", "OverlayRenderer", "OverlayVideoWriter"]
