"""`openai:MODEL`: embeddings from any OpenAI-compatible `/embeddings` endpoint.

Endpoint and key follow `models.openai` with the chat backend's rules: the key comes from the
environment variable the config names, a localhost server may go without ("EMPTY"), and the key
never appears in an error message. Embedding happens outside the model door (indexing is
synchronous), so the SDK's own retries with backoff are on here; its tokens and cost still go
on the open run's books (stage `embed`) and count toward its budget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import openai

from lbi.embed.base import EmbedError, register_embedder
from lbi.embed.minilm import l2_normalise
from lbi.models.accounting import run_accountant
from lbi.models.base import ChatResponse, ModelError
from lbi.models.openai_backend import resolve_api_key

if TYPE_CHECKING:
    from lbi.config import Config, OpenAIModelConfig


class OpenAIEmbedder:
    """One embedding model on one OpenAI-compatible endpoint (sync client)."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        key_env: str,
        api_key: str,
        timeout_s: float = 60.0,
        batch_size: int = 64,
        max_retries: int = 2,
        prefix: str = "openai",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.model = model
        self.name = f"{prefix}:{model}"
        self.base_url = base_url
        self.key_env = key_env
        self.batch_size = max(1, batch_size)
        self._key = api_key
        self._dim: int | None = None
        self._client = openai.OpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout_s,
            max_retries=max_retries,
            default_headers=headers or None,
        )

    @property
    def dim(self) -> int:
        """Known after the first call; asked of the endpoint with a one-word text if needed."""
        if self._dim is None:
            self.embed(["dimension"])
        assert self._dim is not None
        return self._dim

    @dim.setter
    def dim(self, value: int) -> None:  # the Embedder protocol declares a plain attribute
        self._dim = value

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = [
            self._embed_batch(texts[i : i + self.batch_size])
            for i in range(0, len(texts), self.batch_size)
        ]
        out = l2_normalise(np.concatenate(rows, axis=0))
        self._dim = out.shape[1]
        return out

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        # OpenAI rejects empty strings; a space embeds as "nothing" the same way.
        inputs = [t if t.strip() else " " for t in texts]
        accountant = run_accountant()  # the run's books and budget, as for chat calls
        accountant.check_budget()
        try:
            response = self._client.embeddings.create(
                model=self.model, input=inputs, encoding_format="float"
            )
        except openai.APIStatusError as e:
            raise EmbedError(
                self._scrub(f"{self.name} at {self.base_url}: HTTP {e.status_code}: {e.message}")
            ) from None
        except openai.APIError as e:
            raise EmbedError(self._scrub(f"{self.name} at {self.base_url}: {e}")) from None
        usage = getattr(response, "usage", None)
        tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        accountant.record_call("embed", self.name, ChatResponse(text="", prompt_tokens=tokens), 0.0)
        data = sorted(response.data, key=lambda d: d.index)
        if len(data) != len(texts):
            raise EmbedError(f"{self.name} returned {len(data)} embeddings for {len(texts)} texts")
        return np.asarray([d.embedding for d in data], dtype=np.float32)

    def _scrub(self, message: str) -> str:
        if self._key and self._key != "EMPTY":
            message = message.replace(self._key, f"${self.key_env}")
        return message


@register_embedder("openai")
def make_openai_embedder(arg: str, config: Config) -> OpenAIEmbedder:
    """`openai:MODEL` on `models.openai.base_url`, key from `$models.openai.api_key_env`."""
    if not arg:
        raise EmbedError("openai embedder needs a model name, e.g. openai:text-embedding-3-small")
    return endpoint_embedder(arg, config.models.openai, config)


def endpoint_embedder(
    arg: str, cfg: OpenAIModelConfig, config: Config, prefix: str = "openai"
) -> OpenAIEmbedder:
    """Embeddings from the endpoint `cfg` (`models.openai`, or a named one in `endpoints:`)."""
    try:
        key = resolve_api_key(cfg)
    except ModelError as e:
        raise EmbedError(str(e)) from None
    return OpenAIEmbedder(
        arg,
        base_url=cfg.base_url,
        key_env=cfg.api_key_env,
        api_key=key,
        timeout_s=cfg.timeout_s,
        batch_size=config.embed.batch_size,
        max_retries=config.door.max_retries,
        prefix=prefix,
        headers=getattr(cfg, "headers", None),
    )
