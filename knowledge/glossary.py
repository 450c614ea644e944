"""Cross-lingual query expansion: the English words for the support terms in a customer's message.

The sample knowledge is mostly English and the bundled MiniLM embedding is English-only, so an
Indonesian "dana belum kembali" finds nothing. A glossary per language (`knowledge/glossary/<lang>.yaml`,
data a support lead can extend) maps the forms customers write — formal, slang, typos, without
diacritics — to the English words the FAQs use; those are appended to the query for both the
vector and the lexical search. Measured in evals/retrieval_eval.py.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

GLOSSARY_DIR = Path(__file__).parent / "glossary"


class GlossaryError(Exception):
    """A glossary file is malformed: names the file."""


class Term(BaseModel):
    model_config = ConfigDict(extra="forbid")
    local: list[str] = Field(min_length=1)
    en: str = Field(min_length=1)


class Glossary(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lang: str
    description: str = ""
    terms: list[Term]


def fold(text: str) -> str:
    """Lower case without diacritics: "comandă" and "comanda" are one word to a customer."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(ch))


@lru_cache(maxsize=None)
def _compiled(lang: str, directory: Path = GLOSSARY_DIR) -> list[tuple[re.Pattern, str]]:
    path = directory / f"{lang}.yaml"
    if not path.is_file():
        return []
    try:
        glossary = Glossary.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except Exception as exc:
        raise GlossaryError(f"{path}: {exc}") from exc
    out = []
    for term in glossary.terms:
        forms = sorted({fold(f) for f in term.local if f.strip()}, key=len, reverse=True)
        if lang == "zh":  # no spaces between words: substrings
            rx = re.compile("|".join(map(re.escape, forms)))
        else:  # word starts, so a stem covers its inflections ("rambursa" -> rambursarea)
            rx = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, forms)) + ")")
        out.append((rx, term.en))
    return out


def expand_query(text: str, language: str | None) -> str:
    """`text` plus the English words for the glossary terms it contains (unchanged for English
    or a language without a glossary)."""
    if not language or language == "en":
        return text
    folded = fold(text)
    extra: list[str] = []
    for rx, english in _compiled(language):
        if rx.search(folded) and english not in extra:
            extra.append(english)
    return f"{text}\n{' '.join(extra)}" if extra else text
