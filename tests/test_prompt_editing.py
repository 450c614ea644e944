"""Editing prompts on a running server: reload on change, last good version kept on a broken edit,
older versions side by side (`suggest@1`), a brand's default template."""

from __future__ import annotations

import os
import time

import pytest

from prompts import templates
from tests.fake_llm import Step
from tests.test_suggest_api import GOOD, suggest

TEMPLATE = """name: {name}
version: "{version}"
description: a test template
system: You write replies. {marker}
user: "{{{{ message }}}}"
"""


def _write(path, version: str, marker: str, body: str | None = None) -> None:
    path.write_text(body if body is not None else TEMPLATE.format(name=path.stem, version=version, marker=marker))
    stamp = time.time_ns() + int(version if version.isdigit() else 0) * 10**9  # a new mtime, whatever the clock's resolution
    os.utime(path, ns=(stamp, stamp))


def test_an_edit_is_picked_up_and_a_broken_edit_keeps_the_last_good_version(tmp_path):
    path = tmp_path / "reply.yaml"
    _write(path, "1", "first")
    assert templates.load("reply", tmp_path).version == "1"
    _write(path, "2", "second")
    assert "second" in templates.load("reply", tmp_path).system and templates.problem("reply", tmp_path) is None
    _write(path, "3", "", body="name: reply\nversion: '3'\ndescription: d\nsystem: '{% if %}'\nuser: u\n")
    kept = templates.load("reply", tmp_path)
    assert kept.version == "2"
    assert "syntax" in templates.problem("reply", tmp_path)
    _write(path, "4", "fixed")
    assert templates.load("reply", tmp_path).version == "4" and templates.problem("reply", tmp_path) is None


@pytest.mark.parametrize("stop, says", [("['']", "at least 1 character"),
                                         ("['a', 'b', 'c', 'd']", "at most 3 items")])
def test_a_stop_sequence_list_the_endpoints_would_refuse_is_rejected_with_why(tmp_path, stop, says):
    """OpenAI takes at most 4 stop sequences and the pipeline adds one; an empty one would end every reply."""
    (tmp_path / "reply.yaml").write_text(f"name: reply\nversion: '1'\ndescription: d\nparams:\n  stop: {stop}\n"
                                         "system: s\nuser: u\n")
    with pytest.raises(templates.PromptInvalid, match=says):
        templates.load("reply", tmp_path)


def test_a_new_file_that_is_broken_from_the_start_is_an_error(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: bad\nversion: '1'\ndescription: d\nsystem: '{% if %}'\nuser: u\n")
    with pytest.raises(templates.PromptInvalid):
        templates.load("bad", tmp_path)
    with pytest.raises(templates.PromptNotFound):
        templates.load("../etc/passwd", tmp_path)


def test_running_server_serves_the_edited_template_without_a_restart(client, fake_llm):
    path = templates.TEMPLATE_DIR / "zz_test_edit.yaml"
    source = (templates.TEMPLATE_DIR / "suggest.yaml").read_text()
    try:
        _write(path, "1", "", body=source.replace("name: suggest", "name: zz_test_edit").replace('version: "2"', 'version: "7"'))
        fake_llm.reset(Step(content=GOOD))
        assert suggest(client, n=1, prompt="zz_test_edit").json()["prompt"] == {"name": "zz_test_edit", "version": "7"}
        edited = source.replace("name: suggest", "name: zz_test_edit").replace('version: "2"', 'version: "8"')
        _write(path, "2", "", body=edited.replace("You write replies", "EDITED: you write replies"))
        body = suggest(client, n=1, prompt="zz_test_edit").json()
        assert body["prompt"]["version"] == "8" and "EDITED" in fake_llm.requests[-1]["messages"][0]["content"]
        # an undefined variable in an edit: rejected, version 8 keeps serving, and the API says why
        _write(path, "3", "", body=edited.replace('version: "8"', 'version: "9"').replace("{{ brand }}", "{{ brnad }}"))
        shown = client.get("/v1/prompts/zz_test_edit").json()
        assert shown["version"] == "8" and "brnad" in shown["problem"]
        assert suggest(client, n=1, prompt="zz_test_edit").json()["prompt"]["version"] == "8"
    finally:
        path.unlink(missing_ok=True)


def test_an_older_version_is_served_side_by_side(client, fake_llm):
    fake_llm.reset(Step(content=GOOD))
    old = suggest(client, n=1, prompt="suggest@1").json()
    assert old["prompt"] == {"name": "suggest", "version": "1"}
    assert "RESPOND" not in fake_llm.requests[-1]["messages"][1]["content"]  # v1 asked for plain text
    assert old["drafts"][0]["segments"]  # its reply is still sorted into parts
    new = suggest(client, n=1).json()
    assert new["prompt"] == {"name": "suggest", "version": "2"}
    assert suggest(client, prompt="suggest@9").status_code == 404


def test_prompts_check_passes_the_shipped_templates_and_catches_a_minimising_example(tmp_path):
    from prompts.lint import lint_all

    assert lint_all() == {name: [] for name in lint_all()}
    body = (templates.TEMPLATE_DIR / "suggest.yaml").read_text()
    (tmp_path / "suggest.yaml").write_text(body.replace("Rules:", "Rules:\n  - Example: Just click Settings and you're done."))
    (tmp_path / "huge.yaml").write_text(body.replace("knowledge_budget: 350", "knowledge_budget: 5000"))
    (tmp_path / "typo.yaml").write_text(body.replace("{{ brand }}", "{{ brnad }}"))
    problems = lint_all(tmp_path, context_window=2048)
    assert any("minimising" in p for p in problems["suggest.yaml"])
    assert any("do not fit a 2048-token context" in p for p in problems["huge.yaml"])
    assert any("brnad" in p for p in problems["typo.yaml"])


def _render(settings, *args):
    import json
    import subprocess
    import sys

    env = {**os.environ, "TACTFUL_DATA_DIR": str(settings.data_dir)}
    r = subprocess.run([sys.executable, "-m", "api.cli", "prompts", "render", *args], capture_output=True, text=True,
                       timeout=120, env=env)
    return r.returncode, json.loads(r.stdout) if r.returncode == 0 else r.stderr


def test_prompts_render_message_shows_exactly_what_the_llm_gets(settings, client, fake_llm):
    from tests.test_suggest_api import COMPLAINT

    code, shown = _render(settings, "suggest", "--message", COMPLAINT, "--brand", "acme", "--channel", "email")
    assert code == 0, shown
    fake_llm.reset(Step(content=GOOD))
    assert suggest(client, n=1, channel="email").status_code == 200
    sent = fake_llm.requests[0]["messages"]
    assert [{"role": m["role"], "content": m["content"]} for m in shown["messages"]] == sent
    assert shown["triage"]["serious"] is True and shown["knowledge"]
    assert all(f"[{k['id']}]" in sent[-1]["content"] for k in shown["knowledge"])
    assert all(m["tokens"] > 0 for m in shown["messages"])
    assert shown["prompt_tokens"] == sum(m["tokens"] for m in shown["messages"])


@pytest.mark.parametrize("args, says", [
    (["suggest", "--message", "hello", "--brand", "nobody"], "no knowledge base"),
    (["suggest", "--message", "hello", "--channel", "pigeon"], "--channel"),
    (["repair", "--message", "hello"], "--vars"),
    (["suggest"], "--message"),
    (["suggest", "--vars", "/nonexistent/vars.json"], "No such file"),
])
def test_prompts_render_says_what_is_wrong(settings, store, args, says):
    code, err = _render(settings, *args)
    assert code == 2 and says in err


def test_prompts_render_of_a_troll_says_nothing_is_sent(settings, store):
    code, shown = _render(settings, "suggest", "--message", "you are all idiots lol, worst company ever, go bankrupt")
    assert code == 0 and shown["messages"] == [] and "do_not_engage" in shown["note"]
