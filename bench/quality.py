"""Figure 6: translation quality (chrF) by how text is cut into requests.

The first N FLORES-200 devtest sentences go through the real orchestrator with
the embedded model (Gemma 3 270M), English to Chinese and English to German, as
a plain-text file, in three ways:

- sentence: one sentence per paragraph, so one sentence per request;
- paragraph: five sentences per paragraph. The base model is prompted
  completion-style, and since issue 14 such a model gets each paragraph one
  sentence per request, joined back and checked as the paragraph (before, one
  paragraph per request: en->zh chrF 4.5 with 35 of 40 paragraphs kept in
  English, en->de 27.8 with 33 kept);
- paragraph + previous: the same, with ``translate.previous_chunk_context`` on,
  so each request also carries the previous paragraph and its translation.

chrF (sacrebleu, corpus level) is computed per five-sentence paragraph for all
three, against the human translations joined the same way; the sentence mode's
sentence-level score is in the JSON too. Paragraphs the pipeline kept in English
count as they are: that is what the reader gets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.backends import Recorder, ScriptedBackend, shout, to_zh
from bench.common import FLORES, Context, Figure, chrf, read_lines, run_pipeline
from pipeline import segments
from pipeline.backends.embedded import BUNDLED

NAME = "quality"
TITLE = "Quality (chrF, FLORES-200 devtest)"
SIZES = {
    "tiny": {"sentences": 4, "per_paragraph": 2},
    "quick": {"sentences": 3, "per_paragraph": 3},
    "full": {"sentences": 200, "per_paragraph": 5},
}
LANGUAGES = {"zh": "zho_Hans", "de": "deu_Latn"}
MODES = ("sentence", "paragraph", "context")
LABELS = {
    "sentence": "one sentence per request",
    "paragraph": "5-sentence paragraphs (sent sentence by sentence)",
    "context": "paragraph + previous one as context",
}


def run(ctx: Context) -> Figure:
    size = ctx.pick(SIZES)
    n, per = size["sentences"], size["per_paragraph"]
    fig = Figure(NAME, TITLE, params={**size, "model": "gemma-3-270m" if ctx.use_model else "-"})
    if not ctx.use_model:
        fig.notes.append("scripted stand-in, not the model: the scores mean nothing here")
    english = read_lines(FLORES / "eng_Latn.devtest", n)
    implemented = context_implemented(ctx.fresh("quality/probe"))
    fig.params["previous_chunk_context_implemented"] = implemented
    if not implemented:
        fig.notes.append(
            "translate.previous_chunk_context is ignored by the orchestrator (no request "
            "carried the previous chunk): the third way was not measured."
        )
    for lang, code in LANGUAGES.items():
        reference = read_lines(FLORES / f"{code}.devtest", n)
        glue = "" if lang == "zh" else " "
        ref_paragraphs = [glue.join(reference[i : i + per]) for i in range(0, n, per)]
        for mode in MODES if implemented else MODES[:2]:
            work = ctx.fresh(f"quality/{lang}-{mode}")
            result = _translate(ctx, work, english, lang, mode, per)
            hyp = result.pop("hypotheses")
            if mode == "sentence":
                result["chrf_sentence_level"] = round(chrf(hyp, reference), 2)
                hyp = [glue.join(hyp[i : i + per]) for i in range(0, n, per)]
            score = round(chrf(hyp, ref_paragraphs), 2)
            result["chrf"] = score
            fig.data[f"{lang}-{mode}"] = result
            extra = f", {result['kept']} kept" if result["kept"] else ""
            if mode == "context":
                extra = f", {result['requests_with_context']} with context" + extra
                if result["requests"] > 1 and not result["requests_with_context"]:
                    fig.notes.append(
                        f"en→{lang}: no request carried the previous paragraph, so the "
                        "third row repeats the second: the orchestrator passes the previous "
                        "chunk only when its source and translation fit in half of "
                        "translate.chunk_tokens (estimated as twice the source tokens)."
                    )
            fig.add(f"en→{lang}: {LABELS[mode]} ({result['requests']} requests{extra})", score)
    fig.notes.append(
        f"{n} sentences per language, chrF over {per}-sentence paragraphs; "
        "kept = paragraphs left in English after retries."
    )
    return fig


def context_implemented(work: Path) -> bool:
    """Whether the orchestrator sends the previous chunk when asked to (a scripted probe)."""
    source = work / "input"
    source.mkdir()
    (source / "probe.txt").write_text("One paragraph here.\n\nAnother one here.\n")
    backend = ScriptedBackend(shout, one_segment_per_request=True)
    run_pipeline(
        source,
        work / "out",
        "de",
        memory_path=work / "memory.sqlite",
        backend="embedded",
        model="probe",
        factory=backend.factory,
        overrides={"translate": {"previous_chunk_context": True}},
    )
    return any(r.prompt.context is not None for r in backend.requests)


def _translate(
    ctx: Context, work: Path, english: list[str], lang: str, mode: str, per: int
) -> dict[str, Any]:
    if mode == "sentence":
        paragraphs = english
    else:
        paragraphs = [" ".join(english[i : i + per]) for i in range(0, len(english), per)]
    source = work / "input"
    source.mkdir()
    (source / "flores.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    recorder: Recorder | ScriptedBackend
    if ctx.use_model:
        recorder = Recorder()
    else:
        recorder = ScriptedBackend(to_zh if lang == "zh" else shout, one_segment_per_request=True)
    report = run_pipeline(
        source,
        work / "out",
        lang,
        memory_path=work / "memory.sqlite",
        backend="embedded",
        model=BUNDLED,
        factory=recorder.factory,
        overrides={"translate": {"previous_chunk_context": mode == "context"}},
    )
    out = (work / "out" / "flores.txt").read_text(encoding="utf-8")
    hypotheses = [s.content for s in segments.split(out, markdown=False) if s.kind == "prose"]
    if len(hypotheses) != len(paragraphs):
        raise RuntimeError(
            f"en->{lang} {mode}: {len(hypotheses)} output paragraphs for {len(paragraphs)}"
        )
    return {
        "hypotheses": hypotheses,
        "requests": report.requests,
        "kept": report.kept,
        "model_seconds": round(report.model_seconds, 2),
        "output_tokens": report.output_tokens,
        "prompt_tokens": report.prompt_tokens,
        "requests_with_context": sum(r.prompt.context is not None for r in recorder.requests),
    }
