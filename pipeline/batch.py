"""Offline batch files for GPU clusters: ``vllm run-batch`` and other services
that take the OpenAI batch format.

``export`` plans every document like a run (no model), and writes one request
line per piece not yet in the translation memory: ``custom_id`` is the piece's
memory key and ``body`` is exactly what a live ``--backend openai`` request
sends. The pieces themselves wait in the memory (``pending``), so ``import``
needs nothing but the results: it cleans and checks every answer as a live run
does, stores the passing ones under their keys and lists the rest. The next
live run with the same model then finds the imported pieces in the memory and
asks the model only for what failed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import chunks, clean, languages, prompts, targets
from pipeline.atomic import write_atomic
from pipeline.backends.openai import chat_body
from pipeline.config import Config
from pipeline.errors import UsageError
from pipeline.execute import build_request, check_piece
from pipeline.memory import Entry, Memory, Pending
from pipeline.options import RunOptions
from pipeline.plan import FileJob, Planner
from pipeline.prompts import Prompt
from pipeline.protect import Protected

URL = "/v1/chat/completions"


@dataclass
class Exported:
    files: list[Path] = field(default_factory=list)
    requests: int = 0
    documents: int = 0
    in_memory: int = 0  # pieces already translated: not exported


@dataclass
class Imported:
    accepted: int = 0
    # (document or custom_id, why) for every answer not stored.
    rejected: list[tuple[str, str]] = field(default_factory=list)
    unknown: int = 0  # custom_ids this memory never exported (or already imported)


def export(cfg: Config, opts: RunOptions, out: Path, *, shard_size: int = 0) -> Exported:
    """Write the requests for every piece that needs the model; ``shard_size`` > 0
    splits them into ``NAME-00001.jsonl``, ``NAME-00002.jsonl``, ..."""
    result = Exported()
    outs = targets.resolve(cfg, opts)
    found = targets.sources(cfg, opts, outs)
    lines: list[str] = []
    pending: list[tuple[str, Pending]] = []
    with Memory(opts.memory_path) as memory:
        planner = Planner(cfg, opts, memory)
        pairs = [(src, target) for target in outs for src in found.files]
        for job in planner.plan_all(pairs):
            if not isinstance(job, FileJob):
                continue
            result.documents += 1
            for piece in job.pieces:
                if not piece.pending:
                    result.in_memory += 1
                    continue
                request = build_request(cfg, opts, planner.system, [piece], job.lang)
                body = chat_body(opts.model, request, stream=False)
                lines.append(
                    json.dumps(
                        {"custom_id": piece.key, "method": "POST", "url": URL, "body": body},
                        ensure_ascii=False,
                    )
                )
                pending.append(
                    (
                        piece.key,
                        Pending(
                            text=piece.protected.text,
                            spans=piece.protected.spans,
                            values=piece.protected.values,
                            block=piece.block,
                            source_lang=opts.source,
                            target_lang=job.lang,
                            model=opts.model,
                            document=job.source.rel.as_posix(),
                        ),
                    )
                )
        memory.put_pending(dict(pending).items())
    result.requests = len(dict(pending))
    unique = list(dict.fromkeys(lines))
    for path, part in _shards(out, unique, shard_size):
        write_atomic(path, "".join(f"{line}\n" for line in part).encode("utf-8"))
        result.files.append(path)
    return result


def _shards(out: Path, lines: list[str], size: int) -> Iterator[tuple[Path, list[str]]]:
    if size <= 0 or len(lines) <= size:
        yield out, lines
        return
    for n, start in enumerate(range(0, len(lines), size), 1):
        yield out.with_name(f"{out.stem}-{n:05d}{out.suffix}"), lines[start : start + size]


def import_results(cfg: Config, memory_path: Path, paths: Sequence[Path]) -> Imported:
    """Read result files (vLLM's output format); store every answer that passes."""
    result = Imported()
    with Memory(memory_path) as memory:
        for path in paths:
            for number, line in enumerate(_read_lines(path), 1):
                custom_id, body, error = _parse_line(path, number, line)
                waiting = memory.get_pending([custom_id]).get(custom_id)
                if waiting is None:
                    result.unknown += 1
                    continue
                why = error or _accept(cfg, memory, custom_id, waiting, body)
                if why:
                    result.rejected.append((waiting.document or custom_id, why))
                else:
                    result.accepted += 1
    return result


def _prompt(cfg: Config, waiting: Pending) -> Prompt:
    """The prompt the exported request carried, as far as the checks need it (the
    role's words and the language labels, which must not leak into an answer)."""
    system = prompts.render_role(
        cfg.role_system(cfg.translate.role), waiting.source_lang, waiting.target_lang
    )
    return Prompt(
        system=system,
        text=waiting.text,
        source_name=languages.name(waiting.source_lang),
        target_name=languages.name(waiting.target_lang),
    )


def _accept(cfg: Config, memory: Memory, key: str, waiting: Pending, body: dict[str, Any]) -> str:
    """Store the answer if it passes every check a live answer must pass; else why not."""
    choices = body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(choice, dict):
        return "the result has no answer"
    message = choice.get("message")
    text = message.get("content") if isinstance(message, dict) else None
    if not isinstance(text, str):
        return "the result has no answer text"
    if choice.get("finish_reason") == "length":
        return "answer cut at the output-token bound"
    protected = Protected(text=waiting.text, spans=waiting.spans, values=waiting.values)
    prompt = _prompt(cfg, waiting)
    answer_text = clean.clean(
        text, source=waiting.text, labels=(prompt.source_name, prompt.target_name)
    )
    parts = chunks.split_answer(answer_text, 1)
    if parts is None:
        return "the answer has a different number of paragraphs"
    answer = parts[0]
    problems = check_piece(
        protected,
        answer,
        block=waiting.block,
        source_lang=waiting.source_lang,
        target_lang=waiting.target_lang,
        prompt=prompt,
    )
    if problems:
        return "; ".join(problems)
    usage = body.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    entry = Entry(
        translation=answer,
        model=str(body.get("model") or waiting.model),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        seconds=0.0,
        created=time.time(),
    )
    memory.put_many([(key, entry)])
    memory.drop_pending([key])
    return ""


def _read_lines(path: Path) -> Iterator[str]:
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield line
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _parse_line(path: Path, number: int, line: str) -> tuple[str, dict[str, Any], str]:
    """(custom_id, response body, error) of one result line."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        raise UsageError(
            f"{path}, line {number}: not JSON; give the results file that the batch "
            "run wrote (one JSON object per line)"
        ) from None
    custom_id = data.get("custom_id") if isinstance(data, dict) else None
    if not isinstance(custom_id, str):
        raise UsageError(f"{path}, line {number}: no custom_id; is this a batch results file?")
    if data.get("error"):
        return custom_id, {}, f"the batch service reported an error: {_short(data['error'])}"
    response = data.get("response")
    if not isinstance(response, dict):
        return custom_id, {}, "the result has no response"
    status = response.get("status_code", 200)
    body = response.get("body")
    if status != 200 or not isinstance(body, dict):
        return custom_id, {}, f"the request failed with HTTP {status}"
    return custom_id, body, ""


def _short(value: object, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."
