"""A plain FastAPI app, as teams have it before any rewrite: a hand-written lifespan, no daybreak.

It keeps notes in SQLite. daybreak checks it as it is (README, "Check the app you have")::

    daybreak start  examples/plain_fastapi/app.py:app
    daybreak leaks  examples/plain_fastapi/app.py:app --cycles 10
    daybreak doctor examples/plain_fastapi/app.py:app

Serve it with ``uvicorn --app-dir examples/plain_fastapi app:app``. The
database is ``$NOTES_DATABASE`` (default: notes.sqlite3 in the temporary
directory).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from pydantic import BaseModel


class Note(BaseModel):
    text: str


class Notes:
    """The notes table; one connection, shared by the worker threads of sync routes."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")

    def add(self, text: str) -> int:
        with self._lock, self._db:
            row_id = self._db.execute("INSERT INTO notes (text) VALUES (?)", (text,)).lastrowid
        assert row_id is not None
        return row_id

    def all(self) -> list[dict[str, object]]:
        with self._lock:
            rows = self._db.execute("SELECT id, text FROM notes ORDER BY id").fetchall()
        return [{"id": row_id, "text": text} for row_id, text in rows]

    def close(self) -> None:
        self._db.close()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    path = os.environ.get("NOTES_DATABASE") or os.path.join(tempfile.gettempdir(), "notes.sqlite3")
    app.state.notes = Notes(path)
    try:
        yield
    finally:
        app.state.notes.close()


app = FastAPI(title="notes", lifespan=lifespan)


@app.post("/notes")
def add_note(note: Note, request: Request) -> dict[str, int]:
    return {"id": request.app.state.notes.add(note.text)}


@app.get("/notes")
def list_notes(request: Request) -> list[dict[str, object]]:
    notes: list[dict[str, object]] = request.app.state.notes.all()
    return notes
