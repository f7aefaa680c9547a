"""Native memory: what the C allocator holds, which tracemalloc does not see.

An ``ssl.SSLContext`` kept per start holds about 0.9 MiB of OpenSSL's memory, of
which tracemalloc sees some 190 B. So, beside tracemalloc, each measure reads the
allocator's own figure: glibc's ``mallinfo2()`` (bytes in use, heap and mmapped
chunks), after ``gc.collect()`` and ``malloc_trim(0)``; where there is no
``mallinfo2`` (musl, macOS, glibc < 2.33), the resident set size from
``/proc/self/statm``. Large Python objects come from the same allocator, so the
native series is that figure minus tracemalloc's: what grows there and not in
traced memory is native.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Literal

NativeSource = Literal["mallinfo2", "rss", "none"]

# What a clean service drifts by is a few KiB per cycle (glibc's bins, thread arenas);
# an SSL context with the system's CA bundle is about 900 KiB.
DEFAULT_NATIVE_THRESHOLD = 256 * 1024


_MALLINFO2_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")


@functools.cache
def _reader() -> tuple[NativeSource, Callable[[], int]]:
    # ctypes on first use: importing it opens the process's own symbols (ctypes.dlopen),
    # and importing daybreak must have no side effects.
    import ctypes

    class _Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO2_FIELDS]

    try:
        libc = ctypes.CDLL(None)
        mallinfo2 = libc.mallinfo2
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        pass
    else:
        mallinfo2.restype = _Mallinfo2
        mallinfo2.argtypes = []
        trim.restype = ctypes.c_int
        trim.argtypes = [ctypes.c_size_t]

        def allocated() -> int:
            trim(0)
            info = mallinfo2()
            return int(info.uordblks + info.hblkhd)

        return "mallinfo2", allocated
    if os.path.exists("/proc/self/statm"):
        page = os.sysconf("SC_PAGE_SIZE")

        def resident() -> int:
            with open("/proc/self/statm", "rb") as f:
                return int(f.read().split()[1]) * page

        return "rss", resident
    return "none", lambda: 0


def native_source() -> NativeSource:
    """Which figure :func:`native_bytes` reads on this platform."""
    return _reader()[0]


def native_bytes() -> int:
    """The allocator's bytes in use now (call it after ``gc.collect()``)."""
    return _reader()[1]()
