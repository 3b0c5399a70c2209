"""translate-dir: translate folders of Markdown and text with a local LLM."""

__version__ = "0.1.0"
