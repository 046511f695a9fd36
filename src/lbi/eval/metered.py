"""Per-episode metering: a thin proxy in front of the door that counts one episode's spend.

The door's accountant sums a whole run; episodes run concurrently, so per-episode figures
(calls, tokens, money) come from a proxy that each episode owns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lbi.models.base import ChatRequest, ChatResponse

if TYPE_CHECKING:
    from lbi.models.door import ModelDoor


class MeteredDoor:
    def __init__(self, door: ModelDoor) -> None:
        self.door = door
        self.name = door.name
        self.capabilities = door.capabilities
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost_usd = 0.0

    def _count(self, resp: ChatResponse) -> None:
        self.calls += 1
        self.prompt_tokens += resp.prompt_tokens
        self.completion_tokens += resp.completion_tokens
        self.cost_usd += self.door.accountant.cost(
            self.name, resp.prompt_tokens, resp.completion_tokens
        )

    def answer_tokens(self, kind: str, asked: int) -> int:
        return self.door.answer_tokens(kind, asked)

    async def chat(self, request: ChatRequest, *, stage: str = "default") -> ChatResponse:
        resp = await self.door.chat(request, stage=stage)
        self._count(resp)
        return resp
