"""A translated Docusaurus site builds with Docusaurus itself, which fails on any
broken link, anchor or image (``onBrokenLinks``/``onBrokenAnchors: 'throw'``).

The pages of tests/sites/docusaurus (MDX imports, JSX, admonitions, an image,
in-page and cross-page anchor links) go into a real Docusaurus 3 site
(tests/sites/docusaurus-app, ``npm ci`` there: ``.ci/run`` does it) and are
translated the way a Docusaurus user does it: ``--layout docusaurus`` writes
``i18n/zh/docusaurus-plugin-content-docs/current/``, then ``docusaurus build
--locale zh``. The scripted backend changes every word, so every heading's
automatic id changes too: only the kept ids make the anchors land.

The control: the same site translated with ``--anchors off`` must fail
the build with broken anchors, so the build really checks them.
Under CI (CI=true) a missing tool fails the test; elsewhere it skips.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.testing import ScriptedBackend
from tests.reliability_support import invoke

SITES = Path(__file__).parent / "sites"
APP = SITES / "docusaurus-app"
# A 1x1 PNG: the page's image must exist for the build to pass.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def _docusaurus() -> Path:
    binary = APP / "node_modules" / ".bin" / "docusaurus"
    if shutil.which("node") is None or not binary.exists():
        message = "Docusaurus is not installed: run `npm ci` in tests/sites/docusaurus-app"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary


def _site(tmp_path: Path, anchors: str) -> Path:
    site = tmp_path / "site"
    shutil.copytree(APP, site, ignore=shutil.ignore_patterns("node_modules"))
    (site / "node_modules").symlink_to(APP / "node_modules", target_is_directory=True)
    shutil.copytree(SITES / "docusaurus" / "docs", site / "docs")
    (site / "docs" / "img").mkdir()
    (site / "docs" / "img" / "setup.png").write_bytes(PNG)
    outcome = invoke(
        site / "docs", "--to", "zh", "--layout", "docusaurus", "--anchors", anchors, "--quiet"
    )
    assert outcome.code == 0, outcome.stderr
    return site


def _build(site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(_docusaurus()), "build", "--locale", "zh", "--out-dir", "build"],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "DOCUSAURUS_TELEMETRY_DISABLED": "1", "NO_UPDATE_NOTIFIER": "1"},
    )


def test_translated_docusaurus_site_builds_with_every_link_and_anchor(
    tmp_path: Path, scripted: ScriptedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    _docusaurus()
    monkeypatch.chdir(tmp_path)
    site = _site(tmp_path, "all")
    current = site / "i18n" / "zh" / "docusaurus-plugin-content-docs" / "current"
    intro = (current / "intro.mdx").read_text("utf-8")
    assert "import Tabs from '@theme/Tabs';" in intro and "{/* #troubleshooting */}" in intro
    assert "Troubleshooting" not in intro  # the heading itself was translated
    done = _build(site)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    built = (site / "build" / "intro" / "index.html").read_text("utf-8")
    assert 'id="troubleshooting"' in built and 'href="/setup#requirements"' in built


def test_without_kept_ids_the_same_build_fails_on_broken_anchors(
    tmp_path: Path, scripted: ScriptedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    _docusaurus()
    monkeypatch.chdir(tmp_path)
    site = _site(tmp_path, "off")
    done = _build(site)
    assert done.returncode != 0
    assert "broken anchors" in done.stdout + done.stderr
