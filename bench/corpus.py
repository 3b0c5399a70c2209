"""Generated inputs: a realistic Markdown corpus of any size, and small documents.

Deterministic (a seeded ``random.Random``): the same arguments give the same
bytes, so runs on different days measure the same work. The pages look like
real documentation: YAML front matter, headings, paragraphs with emphasis,
inline code and links, bullet and numbered lists (some nested), fenced code
(bash, yaml, python), GFM tables, block quotes, images and HTML comments.
"""

from __future__ import annotations

import random
from pathlib import Path

_VOCABULARY = (
    "the a an of to in for on with by from at as and or but not this that these those "
    "cluster node pod service operator backup restore storage volume config file folder "
    "request response server client model token chunk segment memory cache index table "
    "user document page section example value default option setting path network port "
    "deploy install upgrade scale monitor verify check create delete update read write "
    "run start stop wait retry fail succeed return keep change use set get list show "
    "quickly safely always never often usually only also then still again already "
    "small large new old first last next previous local remote private public stable "
    "available required optional recommended secure simple complex current latest "
    "replica region zone version release schedule policy resource limit quota label"
)
_WORDS = _VOCABULARY.split()
_NAMES = ("TiDB", "Kubernetes", "Helm", "Prometheus", "Grafana", "PD", "TiKV", "S3", "AWS")
_LANGS = ("bash", "yaml", "python", "shell", "json")


class _Writer:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def words(self, low: int, high: int) -> str:
        n = self.rng.randint(low, high)
        return " ".join(self.rng.choice(_WORDS) for _ in range(n))

    def sentence(self) -> str:
        parts = [self.words(4, 9)]
        extra = self.rng.random()
        if extra < 0.2:
            parts.append(f"`{self.rng.choice(_WORDS)}-{self.rng.randint(1, 99)}`")
        elif extra < 0.35:
            word = self.rng.choice(_WORDS)
            parts.append(
                f"[{self.words(1, 3)}](https://docs.example.com/{word}/{self.rng.randint(1, 500)})"
            )
        elif extra < 0.45:
            parts.append(f"**{self.words(1, 3)}**")
        elif extra < 0.55:
            parts.append(self.rng.choice(_NAMES))
        elif extra < 0.6:
            parts.append(f"_{self.words(1, 2)}_")
        parts.append(self.words(3, 8))
        text = " ".join(parts)
        return text[0].upper() + text[1:] + self.rng.choice(".....?!")

    def paragraph(self, sentences: tuple[int, int] = (2, 6)) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(*sentences)))

    def heading(self, level: int) -> str:
        return "#" * level + " " + self.words(2, 5).capitalize()

    def bullet_list(self) -> str:
        lines = []
        for _ in range(self.rng.randint(2, 6)):
            lines.append(f"- {self.sentence()}")
            if self.rng.random() < 0.2:
                lines.append(f"    - {self.sentence()}")
        return "\n".join(lines)

    def numbered_list(self) -> str:
        items = []
        for n in range(1, self.rng.randint(3, 6)):
            item = f"{n}. {self.sentence()}"
            if self.rng.random() < 0.3:
                # A code block inside a list item, as in real install guides.
                item += f"\n\n    ```shell\n    kubectl apply -f step-{n}.yaml\n    ```\n"
            items.append(item)
        return "\n".join(items)

    def code(self) -> str:
        lang = self.rng.choice(_LANGS)
        body = []
        for _ in range(self.rng.randint(2, 10)):
            if lang == "yaml":
                body.append(f"{self.rng.choice(_WORDS)}: {self.rng.randint(0, 9999)}")
            elif lang == "python":
                body.append(f"{self.rng.choice(_WORDS)} = run({self.rng.choice(_WORDS)!r})")
            elif lang == "json":
                body.append(f'  "{self.rng.choice(_WORDS)}": {self.rng.randint(0, 99)},')
            else:
                body.append(f"kubectl get {self.rng.choice(_WORDS)} -n ns-{self.rng.randint(1, 9)}")
        return f"```{lang}\n" + "\n".join(body) + "\n```"

    def table(self) -> str:
        cols = self.rng.randint(2, 4)
        rows = [
            "| " + " | ".join(self.words(1, 2).capitalize() for _ in range(cols)) + " |",
            "|" + "|".join(" --- " for _ in range(cols)) + "|",
        ]
        for _ in range(self.rng.randint(2, 6)):
            cells = [f"`{self.rng.choice(_WORDS)}`", *(self.words(2, 6) for _ in range(cols - 1))]
            rows.append("| " + " | ".join(cells) + " |")
        return "\n".join(rows)

    def block(self) -> str:
        roll = self.rng.random()
        if roll < 0.45:
            return self.paragraph()
        if roll < 0.58:
            return self.bullet_list()
        if roll < 0.66:
            return self.numbered_list()
        if roll < 0.8:
            return self.code()
        if roll < 0.87:
            return self.table()
        if roll < 0.92:
            return "> " + self.paragraph((1, 3))
        if roll < 0.96:
            name = self.rng.choice(_WORDS)
            return f"![{self.words(2, 4)}](/media/{name}-{self.rng.randint(1, 99)}.png)"
        return f"<!-- {self.words(3, 6)} -->"

    def front_matter(self) -> str:
        return (
            "---\n"
            f"title: {self.words(3, 6).capitalize()}\n"
            f"summary: {self.sentence()}\n"
            f"date: 2025-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}\n"
            f"slug: {self.rng.choice(_WORDS)}-{self.rng.randint(1, 9999)}\n"
            f"tags: [{self.rng.choice(_WORDS)}, {self.rng.choice(_WORDS)}]\n"
            "---\n"
        )

    def page(self, size: int) -> str:
        parts = [self.front_matter(), self.heading(1), "", self.paragraph()]
        length = sum(len(p) + 1 for p in parts)
        while length < size:
            if self.rng.random() < 0.15:
                block = self.heading(self.rng.randint(2, 3))
            else:
                block = self.block()
            parts += ["", block]
            length += len(block) + 2
        return "\n".join(parts) + "\n"


def markdown_corpus(
    folder: Path, total_bytes: int, *, page_bytes: int = 20_000, seed: int = 1
) -> int:
    """Write pages of about ``page_bytes`` into ``folder`` until ``total_bytes``;
    returns the bytes written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    n = 0
    while written < total_bytes:
        text = _Writer(seed * 1_000_003 + n).page(min(page_bytes, total_bytes - written))
        data = text.encode("utf-8")
        sub = folder / f"part-{n // 100:03d}"
        sub.mkdir(exist_ok=True)
        (sub / f"page-{n:05d}.md").write_bytes(data)
        written += len(data)
        n += 1
    return written


def small_documents(folder: Path, count: int, *, size: int = 2_000, seed: int = 2) -> list[Path]:
    """``count`` distinct documents of about ``size`` bytes (front matter, a heading,
    paragraphs, a list, a code block), 100 per sub-folder."""
    paths = []
    for n in range(count):
        w = _Writer(seed * 1_000_003 + n)
        parts = [w.front_matter(), w.heading(1), "", w.paragraph((2, 4)), "", w.bullet_list()]
        parts += ["", w.code()]
        while sum(len(p) + 1 for p in parts) < size:
            parts += ["", w.paragraph((2, 4))]
        path = folder / f"d{n // 100:02d}" / f"doc-{n:04d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(parts) + "\n", encoding="utf-8")
        paths.append(path)
    return paths
