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


def test_check_jsonl_names_a_field_of_the_wrong_type_and_goes_on():
    lines = [{"text": "Just restart it lol", "message": 5}, {"text": "ok", "language": ["en"]},
             {"text": "Thanks for the kind words!"}]
    r = run("check", "--jsonl", stdin="".join(json.dumps(x) + "\n" for x in lines))
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert [o.get("error", {}).get("field") for o in out] == ["message", "language", None]
    assert "must be a string" in out[0]["error"]["message"] and out[2]["passed"] is True
    assert "Traceback" not in r.stderr


def test_analyze_jsonl():
    r = run("analyze", "--jsonl", stdin='{"message": "My account was hacked"}\n{"message": "Love it"}\n'
                                        '{"message": 12}\n{"message": "hi", "language": 5}\n')
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert out[0]["serious"] is True and out[1]["sentiment"] == "positive"
    assert [o["error"]["field"] for o in out[2:]] == ["message", "language"]


def test_ingest_reports_problems_and_exits_1(tmp_path):
    (tmp_path / "faq.yaml").write_text("- id: faq-a\n  question: Q\n")
    r = subprocess.run([*TACTFUL, "ingest", str(tmp_path), "--brand", "shop"], capture_output=True, text=True,
                       timeout=120, env={**__import__("os").environ, "TACTFUL_DATA_DIR": str(tmp_path / "data")})
    assert r.returncode == 1 and "faq.yaml:1" in r.stderr and "answer" in r.stderr


def test_serve_refuses_several_workers_with_the_embedded_model():
    env = {k: v for k, v in __import__("os").environ.items() if k != "TACTFUL_LLM_BASE_URL"}
    r = subprocess.run([*TACTFUL, "serve", "--workers", "2"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and "TACTFUL_LLM_BASE_URL" in r.stderr


def _macros(tmp_path):
    folder = tmp_path / "macros"
    (folder / "billing").mkdir(parents=True)
    (folder / "billing" / "refund.md").write_text("# Refunds\n\nSorry for the wait.\nSimply reply with a photo.\n")
    (folder / "delivery.yaml").write_text(
        "late:\n  title: Late parcel\n  text: \"We are sorry it is late. Just wait two more days.\"\n"
        "broken:\n  text: |\n    We are so sorry.\n    If you had read the label, it would not break.\n"
        "tags: [delivery, sorry]\n")
    (folder / "thanks.txt").write_text("Thank you for the kind words!\n")
    (folder / "logo.png").write_bytes(b"\x89PNG")  # not a reply file: ignored
    return folder


def test_check_a_folder_of_saved_replies_reports_file_line_col(tmp_path):
    folder = _macros(tmp_path)
    r = run("check", str(folder))
    assert r.returncode == 1, r.stderr
    lines = r.stdout.splitlines()
    assert f"{folder / 'billing' / 'refund.md'}:4:1: block en.minimising.simply-imperative" in r.stdout
    # a quoted YAML scalar: the column counts the key and the quote
    assert f"{folder / 'delivery.yaml'}:3:35: block en.minimising.just-imperative" in r.stdout, r.stdout
    # a block scalar: the line inside the block, at its indentation
    assert f"{folder / 'delivery.yaml'}:7:5: block en.blame.if-you-had" in r.stdout, r.stdout
    assert not any("thanks.txt" in line for line in lines)
    assert "3 findings, 3 blocking" in r.stderr


def test_check_format_json_and_clean_folder_exits_0(tmp_path):
    folder = _macros(tmp_path)
    out = json.loads(run("check", str(folder), "--format", "json").stdout)
    assert out["passed"] is False
    assert {(f["file"].rsplit("/", 1)[-1], f["line"], f["family"]) for f in out["findings"]} == {
        ("refund.md", 4, "minimising"), ("delivery.yaml", 3, "minimising"), ("delivery.yaml", 7, "blame")}
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "a.txt").write_text("We're sorry, we'll refund you today.")
    r = run("check", str(clean), "--format", "json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"passed": True, "findings": [], "errors": []}


def test_check_names_unreadable_files_and_missing_paths(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Réponse simplement".encode("latin-1"))
    r = run("check", str(bad))
    assert r.returncode == 1 and "latin1.txt" in r.stderr and "UTF-8" in r.stderr
    r = run("check", str(tmp_path / "nope"))
    assert r.returncode == 2 and "nope" in r.stderr


def test_check_jsonl_round_trips_10000_lines_in_order():
    texts = ["Just click Reset lol", "We're sorry, we'll fix it today.", "Cukup klik tombol ini.", "我们马上为您处理。"]
    lines = [json.dumps({"text": f"{texts[i % 4]} #{i}", "message": "I was charged twice!" if i % 3 == 0 else None})
             for i in range(10_000)]
    r = run("check", "--jsonl", stdin="\n".join(lines) + "\n")
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(out) == 10_000 and r.returncode == 1
    for i in (0, 1, 2, 3, 4999, 9998, 9999):
        assert out[i]["passed"] is (i % 4 in (1, 3)), (i, out[i])
        assert out[i]["serious"] is (i % 3 == 0)
        for f in out[i]["findings"]:
            assert f"{texts[i % 4]} #{i}"[f["start"]:f["end"]] == f["match"]
