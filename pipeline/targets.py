"""Languages and layouts -> ``Target``s; which files are sources; where each
translation goes.

A ``Target`` is one output language with its output root, its manifest and the
settings hash its outputs are recorded under. No write ever lands outside the
output root.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline import anchors, discover, languages, manifest, prompts, sites
from pipeline.config import Config
from pipeline.errors import UsageError
from pipeline.options import RunOptions

STATE_DIR = ".translate-dir"
LAYOUTS = ("mirror", "suffix", "hugo-dir", "docusaurus")


@dataclass(frozen=True)
class Target:
    lang: str
    out_root: Path
    manifest: manifest.Manifest
    settings_hash: str
    layout: str
    source_lang: str
    # [site] anchors = "linked": the fragments the input folder's documents link to.
    links: anchors.Links | None = None

    @property
    def state_dir(self) -> Path:
        return self.out_root / STATE_DIR


def resolve(cfg: Config, opts: RunOptions) -> list[Target]:
    outs = {lang: _out_root(cfg, opts, lang) for lang in opts.targets}
    links = None
    site = sites.resolve(cfg.site, opts.root, layout=opts.layout)
    if cfg.site.anchors == "linked" or site.tab_slugs:
        # Every document of the input folder, also when --files names a few: a
        # link from a page not translated now still needs its heading's id (or,
        # with MkDocs tab ids from labels, its tab's label).
        every = _discover(cfg, dataclasses.replace(opts, files=None), outs)
        links = anchors.scan_links(opts.root.resolve(), (f.rel for f in every.files))
    return [_target(cfg, opts, lang, out, links) for lang, out in outs.items()]


def _out_root(cfg: Config, opts: RunOptions, lang: str) -> Path:
    layout = opts.layout
    root = opts.root.resolve()
    if opts.out is not None:
        out = Path(str(opts.out).replace("{lang}", lang))
        if layout == "mirror" and len(opts.targets) > 1 and "{lang}" not in str(opts.out):
            out = out / lang
    elif layout == "mirror":
        out = Path(cfg.files.out.replace("{lang}", lang))
    elif layout == "suffix":
        out = root
    else:  # hugo-dir, docusaurus: the site root holds content/<lang> or i18n/
        out = root.parent
    out = out.resolve()
    if layout == "mirror" and out == root:
        raise UsageError(
            f"the output folder {out} is the input folder; pass --out DIR, "
            "or --layout suffix to write post.<lang>.md beside each source"
        )
    state = out / STATE_DIR
    if state.resolve() != state:
        # The lock and the manifest would be written wherever the link points.
        raise UsageError(
            f"{state} is a symlink; remove it (translate-dir keeps its lock and "
            "manifest there, and writes nothing outside the output folder)"
        )
    return out


def _target(
    cfg: Config, opts: RunOptions, lang: str, out: Path, links: anchors.Links | None
) -> Target:
    layout = opts.layout
    name = "manifest.json" if layout == "mirror" else f"manifest-{lang}.json"
    return Target(
        lang=lang,
        out_root=out,
        manifest=manifest.Manifest.load(out / STATE_DIR / name),
        settings_hash=settings_hash(cfg, opts, lang, links),
        layout=layout,
        source_lang=opts.source,
        links=links,
    )


def settings_hash(
    cfg: Config, opts: RunOptions, lang: str, links: anchors.Links | None = None
) -> str:
    """What an output was written under: a change makes every output stale.

    ``links``: with anchors = "linked", a page's ids depend on the links in
    other pages; when those change, every output is assembled again from the
    memory (no model request) and only the pages whose ids changed are written.
    """
    return manifest.settings_hash(
        {
            "source": opts.source,
            "target": lang,
            "role": opts.role,
            "prompt_version": prompts.PROMPT_VERSION,
            "front_matter": list(cfg.front_matter_keys),
            # A glossary change makes outputs stale; the memory key then
            # re-translates only the pieces whose applicable entries changed.
            "glossary": sorted(cfg.glossary_entries(lang)),
            "do_not_translate": sorted(cfg.do_not_translate),
            # Site syntax and anchors change what is written around the prose.
            "site": dataclasses.asdict(cfg.site),
            **({"links": links.digest()} if links is not None else {}),
        }
    )


def sources(cfg: Config, opts: RunOptions, targets: list[Target]) -> discover.Found:
    """The source files and what was skipped. Output folders inside the input
    folder and translations (post.zh.md) are never sources."""
    return _discover(cfg, opts, {t.lang: t.out_root for t in targets})


def _discover(cfg: Config, opts: RunOptions, outs: dict[str, Path]) -> discover.Found:
    root = opts.root.resolve()
    skip = [out for out in outs.values() if out != root and root in out.parents]
    if opts.layout == "hugo-dir":
        skip += [out / lang for lang, out in outs.items()]
    if opts.layout == "docusaurus":
        skip += [out / "i18n" for out in outs.values()]
    found = discover.discover(
        root,
        include=cfg.files.include,
        exclude=cfg.files.exclude,
        follow_symlinks=cfg.files.follow_symlinks,
        skip_dirs=skip,
        files=opts.files,
    )
    # post.zh.md is a translation (ours in the suffix layout, or a person's), not a
    # source, in every layout; about.en.md (Hugo's explicit source language) is one.
    codes = (set(languages.NAMES) | set(opts.targets)) - {opts.source}
    files = [f for f in found.files if not discover.has_language_suffix(f.rel, codes)]
    return discover.Found(files, found.warnings, found.refused)


def destination(rel: PurePosixPath, target: Target) -> Path:
    """Where the translation of ``rel`` goes, never outside the output root.

    mirror:     <out>/<rel>
    suffix:     <out>/<dir>/<stem>.<lang><ext>   (Hugo/Jekyll multilingual files;
                about.<source_lang>.md -> about.<lang>.md)
    hugo-dir:   <out>/<lang>/<rel>               (out is the site's content/ folder)
    docusaurus: <out>/i18n/<lang>/docusaurus-plugin-content-docs/current/<rel>
    """
    layout, lang, source_lang = target.layout, target.lang, target.source_lang
    if layout == "mirror":
        dest = PurePosixPath(rel)
    elif layout == "suffix":
        stem = rel.stem
        if source_lang and stem.lower().endswith(f".{source_lang.lower()}") and stem[0] != ".":
            stem = stem[: -len(source_lang) - 1]
        dest = rel.with_name(f"{stem}.{lang}{rel.suffix}")
    elif layout == "hugo-dir":
        dest = PurePosixPath(lang) / rel
    elif layout == "docusaurus":
        dest = PurePosixPath("i18n", lang, "docusaurus-plugin-content-docs", "current") / rel
    else:
        raise UsageError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if dest.is_absolute() or ".." in dest.parts:
        raise UsageError("refusing an output path outside the output folder", path=str(rel))
    path = target.out_root / Path(*dest.parts)
    if not discover.inside(path.resolve(), target.out_root.resolve()):
        raise UsageError(f"its output path {path} leads outside {target.out_root}", path=str(rel))
    return path


def output_rel(path: Path, target: Target) -> str:
    """An output's name in the manifest: relative to the output root, posix."""
    return path.relative_to(target.out_root).as_posix()
