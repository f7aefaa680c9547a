"""Where files go: ``DATA_DIR``, or a temporary directory removed at stop."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from chat_service._threads import run_in_thread
from chat_service.settings import Settings

__all__ = ["DataDir", "data_dir"]


@dataclass(frozen=True, slots=True)
class DataDir:
    path: Path
    temporary: bool

    @property
    def sqlite_path(self) -> Path:
        return self.path / "chat.sqlite3"


def _create(path: Path | None) -> Path:
    if path is None:
        return Path(tempfile.mkdtemp(prefix="chat-service-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


async def data_dir(settings: Settings) -> AsyncIterator[DataDir]:
    """Component. The file-system calls run on a short-lived thread, off the event loop."""
    path = await run_in_thread(_create, settings.data_dir, name="chat-data-dir")
    temporary = settings.data_dir is None
    try:
        yield DataDir(path, temporary=temporary)
    finally:
        if temporary:
            await run_in_thread(shutil.rmtree, path, True, name="chat-data-dir")
