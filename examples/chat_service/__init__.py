"""chat_service: daybreak's reference service, a small but real chat backend.

A FastAPI app with a websocket chat (``/ws/chat``) whose messages go through
an agent and an LLM provider and are stored in a database, started by
daybreak in seven phases. ``chat_service.app:registry`` is the registry,
``chat_service.app:app`` the ASGI app.

Embedded defaults need nothing running: SQLite in a temporary directory, an
in-process cache, an echo LLM. Set ``DATABASE_URL`` (PostgreSQL),
``REDIS_URL`` and ``CLICKHOUSE_URL`` to use real services; see
:mod:`chat_service.settings` for every variable.

Importing any module of this package connects to nothing, starts no thread
and touches no file: all of that happens in the component factories.
"""
