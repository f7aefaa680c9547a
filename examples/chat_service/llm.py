"""The LLM client: a pluggable provider protocol, an echo provider by default.

A provider is anything with ``name``, ``async complete(turns) -> str`` and
``async aclose()``. Register one with :func:`register_provider` and select
it with ``LLM_PROVIDER=<name>``; the default ``echo`` provider answers
``"echo: <last user message>"`` and needs no network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from chat_service.settings import Settings

__all__ = ["ChatTurn", "EchoProvider", "LLMClient", "LLMProvider", "available_providers",
           "register_provider"]

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ChatTurn:
    role: Role
    content: str


class LLMProvider(Protocol):
    name: str

    async def complete(self, turns: Sequence[ChatTurn]) -> str: ...

    async def aclose(self) -> None: ...


class EchoProvider:
    """Repeats the last user message: deterministic, offline, instant."""

    name = "echo"

    def __init__(self, settings: Settings) -> None:
        del settings

    async def complete(self, turns: Sequence[ChatTurn]) -> str:
        for turn in reversed(turns):
            if turn.role == "user":
                return f"echo: {turn.content}"
        return "echo: (nothing to echo)"

    async def aclose(self) -> None:
        return None


ProviderFactory = Callable[[Settings], LLMProvider]
_PROVIDERS: dict[str, ProviderFactory] = {"echo": EchoProvider}


def register_provider(name: str, factory: ProviderFactory) -> None:
    """Make ``LLM_PROVIDER=name`` build its provider with ``factory(settings)``."""
    _PROVIDERS[name.lower()] = factory


def available_providers() -> list[str]:
    return sorted(_PROVIDERS)


class LLMClient:
    """Bounds a provider: a timeout per completion and a limit on concurrent calls."""

    def __init__(self, provider: LLMProvider, *, timeout: float, concurrency: int = 8) -> None:
        self.provider = provider
        self.timeout = timeout
        self._slots = asyncio.Semaphore(concurrency)
        self.calls = 0

    async def complete(self, turns: Sequence[ChatTurn]) -> str:
        async with self._slots:
            self.calls += 1
            async with asyncio.timeout(self.timeout):
                return await self.provider.complete(turns)

    async def aclose(self) -> None:
        await self.provider.aclose()

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMClient:
        factory = _PROVIDERS.get(settings.llm_provider)
        if factory is None:
            raise ValueError(f"LLM_PROVIDER={settings.llm_provider!r} is not a registered provider "
                             f"(available: {', '.join(available_providers())})")
        return cls(factory(settings), timeout=settings.llm_timeout)
