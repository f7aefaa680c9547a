"""Open file descriptors of this process, and what each one is (Linux /proc only)."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterable

_FD_DIR = "/proc/self/fd"
_TCP_LISTEN = "0A"


def open_fds() -> frozenset[tuple[int, str]]:
    """(fd, readlink target) for every open descriptor; empty where /proc is missing."""
    try:
        names = os.listdir(_FD_DIR)
    except OSError:
        return frozenset()
    found = set()
    for name in names:
        # listdir read the directory through a descriptor of its own, closed by now:
        # its entry no longer resolves, or (reused meanwhile) resolves to the directory.
        try:
            target = os.readlink(f"{_FD_DIR}/{name}")
        except OSError:
            continue
        if target.startswith("/proc/") and target.endswith("/fd"):
            continue
        found.add((int(name), target))
    return frozenset(found)


def kind_of(target: str) -> str:
    if target.startswith("socket:["):
        return "socket"
    if target.startswith("pipe:["):
        return "pipe"
    if target.startswith("/"):
        return "file"
    return "other"


def describe_sockets(targets: Iterable[str]) -> dict[str, str]:
    """Readable endpoints ("tcp 127.0.0.1:5 -> 127.0.0.1:6379") for `socket:[inode]` targets."""
    wanted = {t[len("socket:[") : -1]: t for t in targets if kind_of(t) == "socket"}
    if not wanted:
        return {}
    described: dict[str, str] = {}
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        for inode, text in _inet_table(proto):
            if inode in wanted:
                described[wanted[inode]] = text
    for inode, text in _unix_table():
        if inode in wanted:
            described[wanted[inode]] = text
    return described


def _rows(name: str) -> list[list[str]]:
    try:
        with open(f"/proc/self/net/{name}", encoding="ascii", errors="replace") as table:
            return [line.split() for line in table.readlines()[1:]]
    except OSError:
        return []


def _inet_table(proto: str) -> Iterable[tuple[str, str]]:
    family = socket.AF_INET6 if proto.endswith("6") else socket.AF_INET
    for row in _rows(proto):
        if len(row) < 10:
            continue
        try:
            local, remote = _endpoint(row[1], family), _endpoint(row[2], family)
        except (ValueError, OSError, struct.error):
            continue
        name = proto.rstrip("6")
        if name == "tcp" and row[3] == _TCP_LISTEN:
            yield row[9], f"tcp {local} (listening)"
        elif remote.endswith(":0"):
            yield row[9], f"{name} {local}"
        else:
            yield row[9], f"{name} {local} -> {remote}"


def _endpoint(text: str, family: int) -> str:
    # The kernel prints the address as native-endian 32-bit words, the port as a number.
    address, port = text.split(":")
    words = [int(address[i : i + 8], 16) for i in range(0, len(address), 8)]
    host = socket.inet_ntop(family, struct.pack(f"={len(words)}I", *words))
    return f"[{host}]:{int(port, 16)}" if family == socket.AF_INET6 else f"{host}:{int(port, 16)}"


def _unix_table() -> Iterable[tuple[str, str]]:
    for row in _rows("unix"):
        if len(row) >= 7:
            yield row[6], " ".join(["unix", *row[7:]])
