"""Where files go: ``DATA_DIR``, or a temporary directory removed at stop."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from chat_service.settings import Settings

__all__ = ["DataDir", "data_dir"]


@dataclass(frozen=True, slots=True)
class DataDir:
    path: Path
    temporary: bool

    @property
    def sqlite_path(self) -> Path:
        return self.path / "chat.sqlite3"


def data_dir(settings: Settings) -> Iterator[DataDir]:
    """Component (blocking: daybreak runs it in a worker thread)."""
    if settings.data_dir is not None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        yield DataDir(settings.data_dir, temporary=False)
        return
    path = Path(tempfile.mkdtemp(prefix="chat-service-"))
    try:
        yield DataDir(path, temporary=True)
    finally:
        shutil.rmtree(path, ignore_errors=True)
