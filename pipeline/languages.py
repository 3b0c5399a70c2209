"""Language codes the CLI accepts, their names in prompts, and their scripts."""

from __future__ import annotations

import re

# code -> English name used in prompts
NAMES: dict[str, str] = {
    "en": "English",
    "zh": "Simplified Chinese",
    "zh-hans": "Simplified Chinese",
    "zh-cn": "Simplified Chinese",
    "zh-hant": "Traditional Chinese",
    "zh-tw": "Traditional Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "pt": "Portuguese",
    "pt-br": "Brazilian Portuguese",
    "it": "Italian",
    "nl": "Dutch",
    "sv": "Swedish",
    "da": "Danish",
    "no": "Norwegian",
    "fi": "Finnish",
    "pl": "Polish",
    "cs": "Czech",
    "ru": "Russian",
    "uk": "Ukrainian",
    "tr": "Turkish",
    "ar": "Arabic",
    "he": "Hebrew",
    "fa": "Persian",
    "hi": "Hindi",
    "th": "Thai",
    "vi": "Vietnamese",
    "id": "Indonesian",
    "el": "Greek",
}

# Targets whose output must contain characters of their own script.
SCRIPTS: dict[str, re.Pattern[str]] = {
    "zh": re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]"),
    "ja": re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]"),
    "ko": re.compile(r"[\uac00-\ud7af\u1100-\u11ff]"),
    "ru": re.compile(r"[\u0400-\u04ff]"),
    "uk": re.compile(r"[\u0400-\u04ff]"),
    "ar": re.compile(r"[\u0600-\u06ff]"),
    "fa": re.compile(r"[\u0600-\u06ff]"),
    "he": re.compile(r"[\u0590-\u05ff]"),
    "hi": re.compile(r"[\u0900-\u097f]"),
    "th": re.compile(r"[\u0e00-\u0e7f]"),
    "el": re.compile(r"[\u0370-\u03ff]"),
}

CJK = frozenset({"zh", "ja", "ko"})

_CODE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")


def normalise(code: str) -> str:
    """Lower-case a language code and use '-' as separator ('zh_CN' -> 'zh-cn')."""
    return code.strip().lower().replace("_", "-")


def is_valid(code: str) -> bool:
    return bool(_CODE.match(normalise(code)))


def name(code: str) -> str:
    """The name used in prompts; unknown but well-formed codes are used as they are."""
    code = normalise(code)
    return NAMES.get(code) or NAMES.get(code.split("-")[0]) or code


def base(code: str) -> str:
    """'zh-cn' -> 'zh': the key for script checks and length bands."""
    return normalise(code).split("-")[0]


def script_pattern(code: str) -> re.Pattern[str] | None:
    return SCRIPTS.get(base(code))
