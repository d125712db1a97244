"""The allocator readings the soak records (glibc mallinfo2, /proc RSS split): present on glibc, None elsewhere."""

from __future__ import annotations

import pytest

from edgeaffect.bench import meminfo as malloc_policy

needs_glibc = pytest.mark.skipif(malloc_policy.glibc() is None, reason="the C library is not glibc")


@needs_glibc
def test_readings():
    m, p = malloc_policy.mallinfo(), malloc_policy.proc_rss()
    assert m is not None and m["arena_mb"] > 0 and m["in_use_mb"] > 0
    assert p is not None and p["anon_mb"] > 0 and p["threads"] >= 1
