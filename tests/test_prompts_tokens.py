from __future__ import annotations

import pytest
import tiktoken

from prompts import templates
from prompts.tokens import count_tokens, fit_to_budget, seed_tiktoken_cache


def _vars(**over):
    base = {"brand": "acme", "channel": "twitter", "visibility": "public", "language_name": "English", "serious": True,
            "categories": ["financial"], "voice": [], "faqs": [], "history": [], "customer_name": None,
            "message": "hi", "max_words": 60, "tone": None, "max_chars": 280, "escalated_to": None,
            "parts": [{"label": "RESPOND", "instruction": "acknowledge"}, {"label": "RESOLVE", "instruction": "next step"}]}
    base.update(over)
    return base


def test_suggest_template_renders_chat_messages():
    msgs = templates.render("suggest", _vars(faqs=[{"id": "faq-a", "title": "T", "text": "Answer."}]))
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "[faq-a] T Answer." in msgs[1]["content"] and "no jokes" in msgs[1]["content"]
    assert "direct message" in msgs[0]["content"]  # public visibility
    assert "- RESPOND: acknowledge." in msgs[1]["content"] and "(RESPOND: ..., RESOLVE: ...)" in msgs[1]["content"]


def test_missing_variable_is_a_clear_error():
    v = _vars()
    del v["message"]
    with pytest.raises(templates.PromptRenderError, match="'message' is undefined"):
        templates.render("suggest", v)


def test_unknown_and_invalid_templates(tmp_path):
    with pytest.raises(templates.PromptNotFound, match="available: .*suggest"):
        templates.load("nope")
    (tmp_path / "bad.yaml").write_text("name: bad\nversion: '1'\ndescription: d\nsystem: '{% if %}'\nuser: u\n")
    with pytest.raises(templates.PromptInvalid, match="syntax"):
        templates.load_file(tmp_path / "bad.yaml")
    (tmp_path / "extra.yaml").write_text("name: x\nversion: '1'\ndescription: d\nsystem: s\nuser: u\nsurprise: 1\n")
    with pytest.raises(templates.PromptInvalid, match="surprise"):
        templates.load_file(tmp_path / "extra.yaml")


def test_tiktoken_works_offline(tmp_path, monkeypatch):
    import tiktoken.load

    def no_network(*args, **kwargs):
        raise AssertionError("tiktoken tried to download")

    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    seed_tiktoken_cache(tmp_path / "cache")
    for name in ("cl100k_base", "o200k_base"):
        enc = tiktoken.get_encoding(name)
        assert enc.decode(enc.encode("Sorry about your parcel!")) == "Sorry about your parcel!"
    assert tiktoken.get_encoding("cl100k_base").encode("hello world") == [15339, 1917]


def test_fit_to_budget_keeps_best_first_whole_items():
    items = ["a " * 50, "b " * 500, "c " * 30]
    kept = fit_to_budget(items, 100)
    assert kept == [items[0], items[2]]
    assert sum(count_tokens(i) for i in kept) <= 100
