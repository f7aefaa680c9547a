"""Whose time is it: a loop blocked by one step is not charged to the steps beside it."""

from __future__ import annotations

import asyncio
import threading
import time

from daybreak import Disabled, Registry

BLOCK_S = 0.3


class Mailer: ...
class Settings: ...


def test_a_blocking_step_beside_a_loop_blocker_keeps_its_own_duration() -> None:
    """The quickstart's mailer: disabled at once in its thread, yet reported as long as the
    validator that blocked the loop meanwhile, and put on the critical path."""
    registry = Registry("shop")
    returned = threading.Event()

    @registry.component
    def settings() -> Settings:
        return Settings()

    @registry.component(optional=True)
    def mailer(settings: Settings) -> Mailer:
        returned.set()
        raise Disabled("SMTP_URL is not set")

    @registry.validator
    async def round_trip(settings: Settings) -> None:
        returned.wait(10)  # the mailer's thread is done: now block the loop
        time.sleep(BLOCK_S)  # noqa: ASYNC251 - the point of the test

    async def main() -> dict[str, object]:
        async with registry.start() as system:
            pass
        return system.report().to_dict()

    report = asyncio.run(main())
    durations = {c["name"]: c["duration_s"] for c in report["components"]}  # type: ignore[attr-defined]
    assert durations["mailer"] < BLOCK_S / 2, durations
    assert "mailer" not in report["critical_path"]  # type: ignore[operator]
    assert "round_trip" in report["critical_path"]  # type: ignore[operator]
