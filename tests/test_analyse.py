"""pipeline.analyse: the same analysis in worker processes as in this one.

The workers are real forked processes; the equivalence runs over the 140 TiDB
pages (0.57 MB, above the size that brings workers in), and the CLI test drives
``translate-dir`` itself, with and without workers, against the fake Ollama.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pipeline import analyse, documents, protect, segments, sites, validate
from pipeline.config import DEFAULTS, SiteSettings
from pipeline.testing import ScriptedBackend
from tests.conftest import data_path
from tests.procs import popen_cli, run_cli
from tests.reliability_support import invoke
from tests.slow_backend import ollama_args, serve_gated_ollama, wait_for

needs_fork = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="workers are forked on Linux only"
)


def tidb_requests(site: sites.Site = sites.PLAIN) -> list[analyse.Request]:
    folder = data_path("tidb-operator-docs", "en")
    requests = []
    for path in sorted(folder.rglob("*.md")):
        doc = documents.decode(path.read_bytes(), name=path.name, markdown=True)
        requests.append(
            analyse.Request(
                doc.text, True, site=site, protect_site=site, do_not_translate=("TiDB",)
            )
        )
    return requests


def test_default_config_lets_the_run_choose() -> None:
    assert DEFAULTS["files"]["processes"] == 0


@needs_fork
def test_workers_give_exactly_what_this_process_gives() -> None:
    requests = tidb_requests()
    assert analyse.workers_for(requests, 2) == 2
    here = [analyse.analyse(r) for r in requests]
    there = list(analyse.analyse_all(requests, processes=2))
    assert there == here
    # Not vacuous: the pages hold prose, protected spans and structure.
    assert sum(p is not None for a in there for p in a.protected) > 3000
    assert sum(len(p.spans) for a in there for p in a.protected if p is not None) > 1000
    assert all(a.structure is not None and a.structure.blocks for a in there)


@needs_fork
def test_a_site_and_plain_text_keep_their_rules_in_the_workers() -> None:
    site = sites.resolve(SiteSettings(kind="docusaurus"), Path("."))  # type: ignore[call-arg]
    requests = tidb_requests(site)
    requests += [
        analyse.Request("Plain text {with braces}.\n\nSecond one.\n" * 50, False, protect_site=site)
    ] * 4
    assert [analyse.analyse(r) for r in requests] == list(
        analyse.analyse_all(requests, processes=2)
    )


def count_analyses(monkeypatch: pytest.MonkeyPatch) -> list[analyse.Request]:
    """From now on, each request ``analyse.analyse`` is called with, in this process."""
    real = analyse.analyse
    calls: list[analyse.Request] = []

    def counted(request: analyse.Request) -> analyse.Analysis:
        calls.append(request)
        return real(request)

    monkeypatch.setattr(analyse, "analyse", counted)
    return calls


def test_one_body_for_several_languages_is_analysed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requests = tidb_requests()[:6]
    # Equal, not the same objects: as each target language decodes the file.
    copies = [dataclasses.replace(r, text="".join([r.text[:1], r.text[1:]])) for r in requests]
    both = requests + copies + requests
    expected = [analyse.analyse(r) for r in both]
    calls = count_analyses(monkeypatch)
    assert list(analyse.analyse_all(both, processes=1)) == expected
    assert len(calls) == len(requests)
    # The ids a page's links target change the analysis, though Site's own
    # equality leaves them out: those are analysed apart.
    linked = sites.Site(kind="docusaurus", heading_ids=True, linked=frozenset({"intro"}))
    other = dataclasses.replace(linked, linked=frozenset({"setup"}))
    text = "# Intro {#intro}\n\nA paragraph.\n"
    apart = [analyse.Request(text, True, site=linked), analyse.Request(text, True, site=other)]
    expected = [analyse.analyse(r) for r in apart]
    calls.clear()
    assert list(analyse.analyse_all(apart, processes=1)) == expected
    assert len(calls) == 2


def test_equal_bodies_count_once_for_the_workers() -> None:
    big = analyse.Request("A paragraph of text.\n\n" * 20_000, True)  # 440 KB
    assert analyse.workers_for([big] * 10, 2) == 0  # one body: too few
    distinct = [dataclasses.replace(big, text=big.text + f"{n}\n") for n in range(10)]
    if sys.platform.startswith("linux"):
        assert analyse.workers_for(distinct, 2) == 2


@needs_fork
def test_workers_give_equal_bodies_the_same_analysis() -> None:
    requests = tidb_requests()
    twice = requests + requests
    assert list(analyse.analyse_all(twice, processes=2)) == [analyse.analyse(r) for r in twice]


def test_the_cli_analyses_each_source_once_for_two_languages(
    scripted: ScriptedBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for n in range(3):
        (src / f"page{n}.md").write_text(f"# Page {n}\n\nThe paragraph of page {n}.\n")
    calls = count_analyses(monkeypatch)
    outcome = invoke(src, "--to", "zh,ja", "--out", tmp_path / "out")
    assert outcome.code == 0, outcome.stderr
    assert len(calls) == 3
    for lang in ("zh", "ja"):
        assert sorted(p.name for p in (tmp_path / "out" / lang).glob("*.md")) == [
            "page0.md",
            "page1.md",
            "page2.md",
        ]


def test_small_runs_one_worker_and_other_threads_stay_in_this_process() -> None:
    requests = tidb_requests()
    assert analyse.workers_for(requests[:5], 0) == 0  # too few bodies
    small = [analyse.Request("A paragraph.\n", True)] * 20
    assert analyse.workers_for(small, 0) == 0  # too few bytes
    assert analyse.workers_for(requests, 1) == 0  # asked for none
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        # fork would copy a lock that thread may hold: no workers.
        assert analyse.workers_for(requests, 2) == 0
    finally:
        stop.set()
        other.join()


@needs_fork
def test_a_worker_that_dies_leaves_the_rest_to_this_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requests = tidb_requests()
    parent = os.getpid()
    real = analyse.analyse

    def dies_in_a_worker(request: analyse.Request) -> analyse.Analysis:
        if os.getpid() != parent and request is requests[70]:
            os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
        return real(request)

    # Forked workers inherit the patched module.
    monkeypatch.setattr(analyse, "analyse", dies_in_a_worker)
    assert list(analyse.analyse_all(requests, processes=2)) == [real(r) for r in requests]


@needs_fork
def test_the_cli_with_and_without_workers_writes_the_same_files(tmp_path: Path) -> None:
    # 12 pages of 30 KB: a paragraph or two to translate, the rest code the
    # workers parse but no request carries.
    docs = tmp_path / "docs"
    docs.mkdir()
    code = "".join(f"kubectl get pods -n ns{n} -o wide\n" for n in range(900))
    for n in range(12):
        (docs / f"page{n}.md").write_text(
            f"# Page {n}\n\nThis page shows how to list pods {n}.\n\n"
            f"```bash\n{code}```\n\nSee [the guide](https://example.com/{n}) first.\n",
            encoding="utf-8",
        )
    outputs = {}
    with serve_gated_ollama() as (fake, _):
        for processes in (2, 1):
            (tmp_path / "pipeline.toml").write_text(
                f"[files]\nprocesses = {processes}\n", encoding="utf-8"
            )
            out = tmp_path / f"out{processes}"
            done = run_cli(
                ["docs", "--to", "zh", "--out", str(out), "--json", *ollama_args(fake)],
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=300,
            )
            assert done.returncode == 0, done.stderr
            summary = json.loads(done.stdout)
            assert (summary["written"], summary["processes"]) == (12, 0 if processes == 1 else 2)
            outputs[processes] = {
                p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.md"))
            }
    assert outputs[2] == outputs[1]
    assert len(outputs[2]) == 12
    page = outputs[2]["page3.md"].decode()
    assert code in page and "https://example.com/3" in page
    assert "This page shows" not in page  # the prose was translated


@needs_fork
def test_ctrl_c_while_workers_parse_stops_at_once_and_leaves_no_process(tmp_path: Path) -> None:
    from bench import corpus

    corpus.markdown_corpus(tmp_path / "docs", 6_000_000)
    proc = popen_cli(
        # Nothing listens on port 9: were planning to finish first, exit 3, not 130.
        ["docs", "--to", "de", "--backend", "ollama", "--host", "127.0.0.1:9", "--model", "x:1b"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a process group of its own, as a terminal's job
    )
    try:
        wait_for(lambda: bool(children(proc.pid)), "the analysis workers", timeout=60)
        workers = children(proc.pid)
        # Ctrl-C: the terminal signals the whole group, the workers too.
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        "translate-dir: error: interrupted; finished files and chunks are kept"
    ]
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), "workers gone", 10)
    assert not (tmp_path / "output").exists()  # nothing was written, no folder made


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux's /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_what_workers_send_back_keeps_every_field() -> None:
    # The wire leaves out what this process can rebuild (a segment's source,
    # a content that is the source less its prefixes and suffixes, a
    # protected text equal to its content): a field rebuilt wrongly, or
    # forgotten, would come back different. Every field differs from its default.
    derived = segments.Segment(
        source="> A b\r\n> c d\r\n",
        kind="prose",
        content="A b\nc d",
        block="heading",
        line_prefixes=("> ", "> "),
        line_suffixes=("\r\n", "\r\n"),
        continuation="> ",
        newline="\r\n",
        implied_title=True,
    )
    # An implied title: its content is not in its source, so it is sent.
    sent = segments.Segment(
        source="!!! note\n",
        kind="prose",
        content="Note",
        block="heading",
        line_prefixes=('!!! note "',),
        line_suffixes=('"\n',),
        implied_title=True,
    )
    verbatim = segments.Segment("kept\n", "verbatim")
    text = derived.source + sent.source + verbatim.source
    structure = validate.block_structure(segments.parse("# Title\n\ntext\n"))
    analysis = analyse.Analysis(
        (derived, sent, verbatim),
        (
            protect.Protected(derived.content, ()),
            protect.Protected("⟦1⟧ x ⟦2⟧", ("<a>", "</a>"), ((1, 2, '"'),)),
            None,
        ),
        structure,
    )
    request = analyse.Request(text, True)
    wire = analyse._to_wire(analysis)
    items, _ = wire
    content = analyse._CONTENT
    assert items[0][1][content] is None and items[0][2][0] is None  # left out
    assert items[1][1][content] == "Note" and items[2] == len(verbatim.source)
    assert analyse._from_wire(request, pickle.loads(pickle.dumps(wire))) == analysis
    with pytest.raises(RuntimeError, match="do not join"):
        analyse._from_wire(analyse.Request(text + "more\n", True), wire)
    # The structure travels pickled, as it is.
    block = structure.blocks[0]
    assert block.sig and block.line
    assert pickle.loads(pickle.dumps(structure)) == structure
