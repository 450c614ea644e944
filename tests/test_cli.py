"""The tactful CLI, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

TACTFUL = [sys.executable, "-m", "api.cli"]


def run(*args, stdin: str = ""):
    return subprocess.run([*TACTFUL, *args], input=stdin, capture_output=True, text=True, timeout=120)


def test_check_reports_findings_like_a_linter(tmp_path):
    draft = tmp_path / "macro.txt"
    draft.write_text("Hello!\nJust click Reset lol\n")
    r = run("check", str(draft), "--message", "You charged me twice!")
    assert r.returncode == 1
    assert f"{draft}:2:1:" in r.stdout and "en.minimising.just-imperative" in r.stdout
    assert f"{draft}:2:18:" in r.stdout and "en.humour.laughter" in r.stdout


def test_check_passes_a_clean_reply(tmp_path):
    draft = tmp_path / "ok.txt"
    draft.write_text("We're sorry about the double charge. We've refunded it today.")
    assert run("check", str(draft)).returncode == 0


def test_check_jsonl_keeps_order_and_shape():
    lines = [{"text": "Just restart it lol", "message": "My card was charged twice"},
             {"text": "Thanks for the kind words!"}, "not json"]
    stdin = "\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines) + "\n"
    r = run("check", "--jsonl", stdin=stdin)
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(out) == 3 and r.returncode == 1
    assert out[0]["passed"] is False and out[0]["serious"] is True
    assert {"rule", "family", "severity", "lang", "start", "end", "match", "message", "suggestion"} <= set(out[0]["findings"][0])
    assert out[1]["passed"] is True and out[2]["error"]["code"] == "invalid_line"


def test_analyze_jsonl():
    r = run("analyze", "--jsonl", stdin='{"message": "My account was hacked"}\n{"message": "Love it"}\n')
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert out[0]["serious"] is True and out[1]["sentiment"] == "positive"


def test_ingest_reports_problems_and_exits_1(tmp_path):
    (tmp_path / "faq.yaml").write_text("- id: faq-a\n  question: Q\n")
    r = subprocess.run([*TACTFUL, "ingest", str(tmp_path), "--brand", "shop"], capture_output=True, text=True,
                       timeout=120, env={**__import__("os").environ, "TACTFUL_DATA_DIR": str(tmp_path / "data")})
    assert r.returncode == 1 and "faq.yaml:1" in r.stderr and "answer" in r.stderr


def test_serve_refuses_several_workers_with_the_embedded_model():
    env = {k: v for k, v in __import__("os").environ.items() if k != "TACTFUL_LLM_BASE_URL"}
    r = subprocess.run([*TACTFUL, "serve", "--workers", "2"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and "TACTFUL_LLM_BASE_URL" in r.stderr
