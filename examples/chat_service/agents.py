"""Agents: one per room, supervised. An agent answers with a tool or the LLM.

The supervisor runs every answer in a task it owns, so a stop cancels the
answers in flight instead of leaving them behind; answers in one room are
serialised so that replies keep the order of the questions.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from chat_service.db import Database
from chat_service.llm import ChatTurn, LLMClient
from chat_service.settings import Settings
from chat_service.tasks import TaskManager
from chat_service.tools import ToolRegistry

__all__ = ["Agent", "AgentSupervisor", "agent_supervisor"]

_MAX_AGENTS = 1000


class Agent:
    def __init__(self, room: str) -> None:
        self.room = room
        self.lock = asyncio.Lock()
        self.answers = 0


class AgentSupervisor:
    def __init__(self, *, llm: LLMClient, tools: ToolRegistry, db: Database, tasks: TaskManager,
                 history_limit: int) -> None:
        self.llm = llm
        self.tools = tools
        self.db = db
        self.tasks = tasks
        self.history_limit = history_limit
        self._agents: OrderedDict[str, Agent] = OrderedDict()
        self._inflight: set[asyncio.Task[str]] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"<AgentSupervisor agents={len(self._agents)} in_flight={len(self._inflight)}>"

    def _agent(self, room: str) -> Agent:
        agent = self._agents.get(room)
        if agent is None:
            agent = self._agents[room] = Agent(room)
            while len(self._agents) > _MAX_AGENTS:
                _, old = self._agents.popitem(last=False)
                if old.lock.locked():  # busy: keep it
                    self._agents[old.room] = old
                    break
        self._agents.move_to_end(room)
        return agent

    async def respond(self, room: str, text: str) -> str:
        """The agent's answer to ``text`` in ``room`` (the question is already stored)."""
        if self._closed:
            raise RuntimeError("the agent supervisor is stopped")
        task = asyncio.get_running_loop().create_task(self._respond(room, text), name=f"agent:{room}")
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return await task  # cancelling the caller cancels the answer too

    async def _respond(self, room: str, text: str) -> str:
        agent = self._agent(room)
        async with agent.lock:
            agent.answers += 1
            if text.startswith("/"):
                return await self._run_tool(text[1:])
            history = await self.db.messages(room, limit=self.history_limit)
            turns = [ChatTurn("system", "You are a helpful chat assistant.")]
            turns += [ChatTurn(m.role, m.content) for m in history  # type: ignore[arg-type]
                      if m.role in ("user", "assistant")]
            if not history or history[-1].content != text:
                turns.append(ChatTurn("user", text))
            return await self.llm.complete(turns)

    async def _run_tool(self, command: str) -> str:
        name, _, args = command.partition(" ")
        tool = self.tools.get(name)
        if tool is None:
            return f"unknown tool {name!r}; try /tools"
        try:
            result: Any = await tool.run(args) if tool.is_async else \
                await self.tasks.run_in_worker(tool.run, args)
        except (ValueError, ArithmeticError, SyntaxError) as exc:
            return f"{name}: {exc}"
        return str(result)

    async def aclose(self) -> None:
        self._closed = True
        inflight = list(self._inflight)
        for task in inflight:
            task.cancel()
        if inflight:
            await asyncio.wait(inflight, timeout=5.0)


async def agent_supervisor(settings: Settings, llm: LLMClient, tools: ToolRegistry, db: Database,
                           tasks: TaskManager) -> AsyncIterator[AgentSupervisor]:
    """Component."""
    supervisor = AgentSupervisor(llm=llm, tools=tools, db=db, tasks=tasks,
                                 history_limit=settings.history_limit)
    try:
        yield supervisor
    finally:
        await supervisor.aclose()
