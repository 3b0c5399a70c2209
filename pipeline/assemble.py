"""Assemble: put each piece's translation back in place (restore the protected
spans, join the pieces of a segment, render the segment with its container
prefixes), check the whole document's block structure against the source,
rewrite the translated front-matter fields, and encode the file as the source
was encoded -> the bytes to write.

Never broken structure: a segment whose translation changes the document's
structure is kept in the source language; if the document still differs, the
whole file is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import PurePosixPath

from pipeline import (
    anchors,
    cjk,
    discover,
    documents,
    front_matter,
    languages,
    protect,
    segments,
    validate,
)
from pipeline.errors import ValidationFailed
from pipeline.plan import FileJob, Slot
from pipeline.targets import destination


def assemble(job: FileJob) -> bytes:
    """The output file's bytes; ``job.report`` learns what was kept and why."""
    report = job.report
    failure = next((c.failure for c in report.chunks if c.failure), "")
    if failure:
        # Say why the backend failed on this file (its own words, no document text).
        report.message = failure
    body = _body(job)
    if job.doc.markdown:
        body = _check_structure(job, body)
        # Translated headings keep their source ids: links to them still land.
        body = anchors.keep_ids(job.doc.text, body, job.site)
    report.kept = sum(p.kept for p in job.pieces)
    return documents.encode(job.doc, body, _front_matter(job))


def _check_structure(job: FileJob, body: str) -> str:
    source = job.doc.text
    want = job.source_structure or source
    # Each segment's links were checked with it: compare blocks only.
    problems = _structure_problems(job, want, body)
    if not problems:
        return body
    # First keep in the source the segments whose translation, rendered in
    # place, has another structure than their source.
    for part in job.parts:
        if isinstance(part, Slot) and part.segment is not None:
            rendered = _render(part, job.lang)
            before = validate.structure(part.segment.source, site=job.site)
            if validate.structure(rendered, site=job.site) != before:
                for p in part.pieces:
                    p.kept = True
    body = _body(job)
    if _structure_problems(job, want, body):
        for p in job.pieces:
            p.kept = True
        job.report.message = "kept in the source language: " + "; ".join(problems[:3])
        return source
    return body


def _structure_problems(job: FileJob, want: validate.Structure | str, body: str) -> list[str]:
    if not isinstance(want, validate.Structure) or job.site.kind == "plain":
        return validate.compare_structure(want, body, links=False)
    # Site syntax (admonition bodies, code shortcodes) parses differently: the
    # output is parsed as the source was.
    got = validate.block_structure(segments.parse(body, site=job.site))
    if got.sigs == want.sigs:
        return []
    for want_sig, got_sig, line in zip(want.sigs, got.sigs, want.lines, strict=False):
        if want_sig != got_sig:
            return [f"line {line}: the block structure changed"]
    return ["the number of blocks changed"]


def _front_matter(job: FileJob) -> str | None:
    fm = job.doc.front_matter
    if fm is None:
        return None
    translations = {
        (slot.field.key, slot.field.index): join_slot(slot, job.lang)
        for slot in job.fm_slots
        if slot.field is not None and not all(p.kept for p in slot.pieces)
    }
    if not translations:
        return fm.raw
    try:
        return front_matter.replace_fields(fm, translations)
    except ValidationFailed as exc:
        job.report.message = "front matter kept: " + "; ".join(exc.problems)
        return fm.raw


def _body(job: FileJob) -> str:
    rename = _renamer(job)
    return "".join(
        part.source if isinstance(part, segments.Segment) else _render(part, job.lang, rename)
        for part in job.parts
    )


Rename = Callable[[PurePosixPath], "str | None"]


def _renamer(job: FileJob) -> Rename | None:
    """Suffix layout: a link to a page that is translated too points at its translation."""
    if not job.site.link_translations or job.target.layout != "suffix":
        return None
    folder = job.source.src.parent

    def rename(path: PurePosixPath) -> str | None:
        page = folder / path
        if not page.is_file() or discover.has_language_suffix(path, (job.lang,)):
            return None
        return destination(PurePosixPath(path.name), job.target).name

    return rename


def _render(slot: Slot, lang: str, rename: Rename | None = None) -> str:
    assert slot.segment is not None
    if all(p.kept for p in slot.pieces) and rename is None:
        return slot.segment.source
    return segments.render(slot.segment, join_slot(slot, lang, rename))


def join_slot(slot: Slot, lang: str, rename: Rename | None = None) -> str:
    """A slot's text in the target language: its pieces restored and joined.

    ``rename``: relative page links are pointed at the translated pages."""
    texts = []
    for p in slot.pieces:
        protected = p.protected
        if rename is not None and protected.spans:
            spans = anchors.translate_links(protected.spans, rename)
            protected = dataclasses.replace(protected, spans=spans)
        if p.kept or p.translation is None:
            texts.append(protect.restore(protected.text, protected))
        else:
            texts.append(protect.restore(p.translation, protected))
    cjk_target = languages.base(lang) in languages.CJK
    out = texts[0]
    for sep, text in zip(slot.separators, texts[1:], strict=True):
        # Chinese and Japanese put no space between sentences, but only where
        # both sides are CJK: a piece kept in the source, or a cut between
        # words of markup ("> >"), keeps its space.
        wide = out[-1:] >= "\u2e80" and text[:1] >= "\u2e80"
        out += ("" if cjk_target and sep == " " and wide else sep) + text
    if cjk_target:
        out = cjk.fix_cjk_emphasis(out)
    return out
