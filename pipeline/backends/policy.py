"""The rules every backend applies the same way, each with its reason.

Backends differ in how they talk to a model; they must not differ in what they
make of the answer. So the think-stripper, the retry decision, the redaction of
server messages and the "was the prompt cut?" judgement live here, once, and
``ollama.py``, ``openai.py``, ``embedded.py`` and ``clean.py`` call them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.backends.base import estimate_tokens
from pipeline.prompts import Prompt

# --- think blocks ---------------------------------------------------------------

# Reasoning models open their answer with <think> (some write <thinking>), and
# some servers leak it even when thinking is off (DESIGN: "strip it anyway").
_THINK_OPEN = re.compile(r"\A\s*<think(?:ing)?>", re.IGNORECASE)
_THINK_OPEN_ANYWHERE = re.compile(r"<think(?:ing)?>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think(?:ing)?>", re.IGNORECASE)


def strip_think(answer: str, source: str = "") -> str:
    """Drop a leading ``<think>...</think>`` block from a model's answer.

    An unterminated block leaves nothing (the model ran out of tokens while
    thinking: there is no translation). A lone ``</think>`` with no opening tag
    before it ends a block that the chat template opened inside the prompt
    (Qwen3, DeepSeek-R1): everything up to it goes. Nothing is stripped when the
    source itself has the tag there (a document about think tags).
    """
    opening = _THINK_OPEN.match(answer)
    if opening is not None:
        if _THINK_OPEN.match(source):
            return answer
        close = _THINK_CLOSE.search(answer, opening.end())
        return "" if close is None else answer[close.end() :].lstrip()
    close = _THINK_CLOSE.search(answer)
    if (
        close is not None
        and _THINK_OPEN_ANYWHERE.search(answer, 0, close.start()) is None
        and _THINK_CLOSE.search(source) is None
    ):
        return answer[close.end() :].lstrip()
    return answer


# --- retries --------------------------------------------------------------------

# Worth the same request again, on every server: 429 rate limited (a proxy or a
# hosted server), 503 busy or still loading the model, 502 / 504 a reverse proxy
# that lost the server for a moment. -1 is how the ollama client reports an
# error line inside a stream: the runner failed mid-answer.
_RETRY_STATUSES = frozenset({-1, 429, 502, 503, 504})


def is_transient(status: int | None, *, runner_restarts: bool = False) -> bool:
    """Whether an HTTP status (or an error code inside a stream) deserves a retry.

    A 500 is retried only where the server restarts a crashed model runner on
    the next request (Ollama: "llama runner process has terminated"). Elsewhere
    a 500 is the server's own bug for this request (llama.cpp's template errors,
    vLLM's validation) and comes back every time, so it fails at once.
    """
    if status is None:
        return False
    return status in _RETRY_STATUSES or (runner_restarts and status == 500)


# --- redaction ------------------------------------------------------------------

# Server error texts go into our one-line messages: keep them short.
MAX_SERVER_MESSAGE = 200


def redact(message: str, prompt: Prompt | None = None) -> str:
    """A server's error text as one short line, withheld when it quotes the document.

    Servers echo the request in their errors (template failures, validation
    errors); our messages end up in terminals, logs and cron mail, and the
    documents are private. With no prompt (start-up errors) it is only shortened.
    """
    message = " ".join(message.split())
    if not message:
        return "no details"
    if prompt is not None:
        document = prompt.text
        if prompt.context is not None:
            document += "\n" + "\n".join(prompt.context)
        for line in document.splitlines():
            line = line.strip()
            if len(line) >= 8 and line[:40] in message:
                return "details withheld (they quote the document)"
    if len(message) <= MAX_SERVER_MESSAGE:
        return message
    return message[: MAX_SERVER_MESSAGE - 3] + "..."


# --- a silently cut prompt ------------------------------------------------------

# Template tokens around each chat message (role markers, turn ends), roughly.
MESSAGE_OVERHEAD = 4
# Below this share of the estimate, an exact count means the server did not read
# the whole prompt. Ollama (0.33) cuts a prompt that does not fit to about half
# of num_ctx, so a cut prompt reads at most ~0.5 of its estimate; an uncut one
# reads 0.77 (Chinese prose), 0.83 (English prose) and 1.18 (TiDB Markdown) of
# it, measured with Gemma 3's tokenizer. 0.6 sits between the two.
PROMPT_CUT_RATIO = 0.6
# Estimates of this many tokens or fewer are too rough to judge by ratio.
PROMPT_CHECK_MIN_TOKENS = 64


def estimate_prompt_tokens(prompt: Prompt) -> int:
    """The whole chat prompt (system, examples, context, text), estimated."""
    return sum(estimate_tokens(m["content"]) + MESSAGE_OVERHEAD for m in prompt.messages())


@dataclass(frozen=True)
class PromptCount:
    """What a server said about the prompt it read.

    ``exact``: ``read`` is the whole prompt, cached tokens included (OpenAI's
    ``usage.prompt_tokens``; Ollama when it also sends
    ``prompt_eval_cached_count``). Otherwise ``read`` is only a lower bound:
    Ollama 0.30.0 counted just the tokens after the prefix cached from the
    previous request, and 0.1.x left the count out when the prompt was cached.
    """

    read: int | None
    answer: int | None
    exact: bool


def prompt_cut(count: PromptCount, *, estimate: int, context: int | None) -> str | None:
    """Why the server must have cut the prompt, or None when nothing says so.

    A cut looks like this, whatever the server counts: the prompt reached the
    context (``read >= context``); the prompt and the answer did not fit it
    together (``read + answer > context``: only a cut or a context shift makes
    room for that); or, with an exact count only, far fewer tokens read than
    sent. A count that a prompt cache can lower proves nothing when it is low,
    so without an exact count the estimate decides: a prompt estimated at the
    whole context or more could not have fit.
    """
    read = count.read
    if context is not None and read is not None:
        if read >= context:
            return f"the prompt of {read} tokens filled the whole context"
        if count.answer is not None and read + count.answer > context:
            return (
                f"the prompt ({read} tokens read) and the answer ({count.answer} tokens) "
                "did not fit the context together"
            )
    if count.exact and read is not None:
        if estimate > PROMPT_CHECK_MIN_TOKENS and read < PROMPT_CUT_RATIO * estimate:
            return f"read {read} prompt tokens of about {estimate}"
        return None
    if context is not None and estimate >= context:
        return f"the prompt of about {estimate} tokens could not fit the context"
    return None
