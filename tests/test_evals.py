"""The eval suite: record and replay, metrics, gates and exit codes, paired comparison, reports.

The LLM is the tests' fake; the CLI runs as a subprocess, as CI runs it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from evals.cases import CASES_DIR, load_cases
from evals.compare import compare
from evals.gates import Gates, Floor, verdict
from evals.metrics import METRICS, score
from evals.report import junit, page
from tests.conftest import ROOT
from tests.fake_llm import Step

LABELLED = ("RESPOND: That is a rotten experience and we understand why you're upset.\nAPOLOGISE: We're so sorry.\n"
            "RESOLVE: Please send us a direct message so we can put this right today.\n"
            "PRIVATE: Thanks for messaging us. Could you send your order number? We'll sort it out straight away.")
PICK = ["en-social-01", "en-social-04", "en-social-05", "id-social-04", "zh-social-04"]


def _cli(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "api.cli", "eval", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def workdir(tmp_path, settings, store, fake_llm):
    """A folder with a few cases, its own recordings, and env pointing tactful at the tests' store and fake LLM."""
    cases = [c for c in load_cases() if c.id in PICK]
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "pick.jsonl").write_text("\n".join(c.model_dump_json() for c in cases) + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TACTFUL_DATA_DIR": str(settings.data_dir),
           "TACTFUL_LLM_BASE_URL": f"{fake_llm.url}/v1", "TACTFUL_LLM_MODEL": "fake", "TACTFUL_LLM_TIMEOUT": "5"}
    fake_llm.reset(Step(content=LABELLED))
    return tmp_path, env


def test_cases_are_valid_and_cover_every_action_in_every_language():
    cases = load_cases()
    assert len(cases) >= 150
    social = [c for c in cases if c.set == "social"]
    assert len(social) == 40
    for lang in ("en", "id", "ro", "zh"):
        mine = {c.labels.action for c in social if c.language == lang}
        assert mine == {"reply_public", "reply_then_private", "escalate", "do_not_engage"}, (lang, mine)


def test_a_recorded_run_replays_without_the_llm_and_a_draft_edited_to_minimise_fails_it(workdir, fake_llm):
    tmp, env = workdir
    common = ["--cases", str(tmp / "cases" / "*.jsonl"), "--recordings", str(tmp / "rec"), "--gates", str(tmp / "gates.yaml")]
    (tmp / "gates.yaml").write_text("floors: {guardrail_pass: {min: 1.0}}\nregression_metrics: [clean_first_time]\n")
    first = _cli(["run", *common, "--llm", "record", "--out", str(tmp / "a")], env, tmp)
    assert first.returncode == 0, first.stdout + first.stderr
    calls = len(fake_llm.requests)
    assert calls >= len(PICK) - 2  # trolls get no LLM call

    # replay: the LLM is not called (point it at a closed port to be sure), and the run is identical
    dead = {**env, "TACTFUL_LLM_BASE_URL": "http://127.0.0.1:9/v1"}
    again = _cli(["run", *common, "--llm", "replay", "--out", str(tmp / "b"), "--baseline", str(tmp / "a" / "run.json")], dead, tmp)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(fake_llm.requests) == calls
    a, b = (json.loads((tmp / d / "run.json").read_text()) for d in ("a", "b"))
    assert [r["scores"] for r in a["results"]] == [r["scores"] for r in b["results"]]
    for name in ("run.json", "junit.xml", "summary.md", "report.html"):
        assert (tmp / "b" / name).stat().st_size > 200

    # a recorded draft edited to "just click": still guarded (fixed), but no longer clean -> regression, exit 1
    recording = next(p for p in (tmp / "rec").glob("*.jsonl") if p.name != "knowledge-searches.jsonl")
    # (the first recorded response only: the others' re-asks would quote the edit and miss the recording)
    edited = recording.read_text().replace("RESPOND: That is", "RESPOND: Just click Help. That is", 1)
    assert edited != recording.read_text()
    recording.write_text(edited)
    worse = _cli(["run", *common, "--llm", "replay", "--out", str(tmp / "c"), "--baseline", str(tmp / "a" / "run.json")], dead, tmp)
    assert worse.returncode == 1, worse.stdout + worse.stderr
    assert "clean_first_time regressed 1.00 -> 0.00" in worse.stdout + worse.stderr
    c = json.loads((tmp / "c" / "run.json").read_text())
    assert all(r["scores"]["guardrail_pass"] in (None, 1.0) for r in c["results"])  # nothing unguarded got out

    # a request never recorded, in replay mode: an infrastructure error, exit 2
    (tmp / "cases" / "pick.jsonl").write_text((tmp / "cases" / "pick.jsonl").read_text().replace("@acme", "@acme_support"))
    missing = _cli(["run", *common, "--llm", "replay", "--out", str(tmp / "d")], dead, tmp)
    # (its knowledge search comes first: the message is part of the search's key too)
    assert missing.returncode == 2 and "a knowledge search was never recorded" in " ".join(missing.stderr.split())


def test_compare_of_a_run_with_itself_reports_no_change_and_a_worse_run_loses(workdir):
    tmp, env = workdir
    out = _cli(["run", "--cases", str(tmp / "cases" / "*.jsonl"), "--recordings", str(tmp / "rec"), "--out", str(tmp / "a"),
                "--gates", str(tmp / "none.yaml")], env, tmp)
    assert out.returncode == 2 and "none.yaml" in out.stderr  # a missing gates file is named
    (tmp / "g.yaml").write_text("floors: {}\n")
    assert _cli(["run", "--cases", str(tmp / "cases" / "*.jsonl"), "--recordings", str(tmp / "rec"), "--out", str(tmp / "a"),
                 "--gates", str(tmp / "g.yaml")], env, tmp).returncode == 0
    run = json.loads((tmp / "a" / "run.json").read_text())
    same = compare(run, run)
    assert (same["wins"], same["losses"]) == (0, 0) and same["ties"] == len(run["results"]) and same["flipped"] == []
    assert all(v["delta"] == 0 and v["ci95"] == (0.0, 0.0) for v in same["metrics"].values())
    worse = json.loads(json.dumps(run))
    worse["results"][0]["scores"]["action_correct"] = 0.0
    result = compare(run, worse)
    assert result["losses"] == 1 and result["flipped"][0]["id"] == run["results"][0]["id"]
    assert result["metrics"]["action_correct"]["delta"] < 0
    printed = _cli(["compare", str(tmp / "a" / "run.json"), str(tmp / "a" / "run.json"), "--out", str(tmp / "cmp")], env, tmp)
    assert printed.returncode == 0 and "0 wins" in printed.stdout and "0 losses" in printed.stdout
    # the recorded baseline keeps each case's scores, not its response: comparing against it names the flips
    slim = {**run, "results": [{"id": r["id"], "repeat": r["repeat"], "scores": r["scores"]} for r in run["results"]]}
    against_baseline = compare(slim, worse)
    assert against_baseline["losses"] == 1 and against_baseline["flipped"][0]["a"] == []


def test_metrics_judge_drafts_independently_of_the_pipeline():
    case = next(c for c in load_cases() if c.id == "en-social-04")
    resp = {"triage": {"language": "en", "serious": True, "action": "reply_then_private", "type": "complaint",
                       "escalate_to": None},
            "drafts": [{"text": "Just click Track order, lol. Send your order number here.", "segments": [], "citations": []}],
            "blocked": [], "knowledge": [], "holding": False}
    scores = score(case, resp)
    assert set(scores) == set(METRICS)
    assert scores["guardrail_pass"] == 0.0 and scores["no_private_data_public"] == 0.0 and scores["rsr_complete"] == 0.0
    assert scores["action_correct"] == 1.0
    problems = verdict({"summary": {"overall": {m: {"mean": v} for m, v in scores.items()}},
                        "results": [{"id": case.id, "repeat": 0, "scores": scores}]},
                       Gates(floors={"rsr_complete": Floor(min=1.0)}))
    assert any("guardrail_pass" in p for p in problems) and any("rsr_complete" in p for p in problems)


def test_a_draft_of_the_brands_sentences_alone_is_not_the_model_passing_first_time():
    case = next(c for c in load_cases() if c.id == "en-social-04")
    parts = [("respond", "Waiting for an order that hasn't come is frustrating."), ("apologise", "We're sorry."),
             ("resolve", "Please send us a direct message and we'll look into it with you.")]

    def draft(*sources: str) -> dict:
        segments = [{"kind": k, "text": t, "source": src} for (k, t), src in zip(parts, sources)]
        return {"text": " ".join(t for _, t in parts), "segments": segments, "citations": []}

    resp = {"triage": {"language": "en", "serious": True, "action": "reply_then_private", "type": "complaint",
                       "escalate_to": None}, "blocked": [], "knowledge": [], "holding": False,
            "drafts": [draft("model", "brand", "brand"), draft("brand", "brand", "brand")]}
    assert score(case, resp)["clean_first_time"] == 0.5


def test_reports_render_charts_and_a_filterable_table():
    case = next(c for c in load_cases() if c.id == "en-social-01")
    resp = {"triage": {"language": "en", "serious": False, "action": "reply_public", "type": "question", "reasons": []},
            "drafts": [{"text": "Yes, we ship to Canada in 5 days.", "segments": [{"kind": "respond", "text": "x"}]}],
            "blocked": [], "knowledge": [], "holding": False, "usage": {"completion_tokens": 9}}
    from evals.runner import summarise

    results = [{"id": case.id, "repeat": 0, "slices": {"language": "en", "type": "question", "serious": "false",
                                                       "action": "reply_public"},
                "message": case.message, "response": resp, "scores": score(case, resp), "latency_ms": 12.0, "tokens": 9}]
    run = {"config": {"prompt": "suggest", "model": "fake", "repeat": 1}, "started": "now", "results": results,
           "summary": summarise(results)}
    html = page(run, [])
    assert html.count("<svg") >= 3 and "Yes, we ship to Canada" in html and 'id="lang"' in html
    suite = ET.fromstring(junit(run))
    assert suite.get("tests") == "1" and suite.get("failures") == "0"


def test_shipped_gates_and_baseline_are_consistent():
    from evals.gates import GATES_FILE, load_gates

    gates = load_gates()
    assert gates.floors["guardrail_pass"].min == 1.0
    if gates.baseline:
        assert (GATES_FILE.parent / gates.baseline).is_file(), "the baseline named in gates.yaml must be committed"
    assert CASES_DIR.is_dir()


def test_the_html_report_renders_in_headless_chromium(tmp_path):
    """Opened in a real browser: the charts are drawn and the filter script ran (it fills the count)."""
    import shutil

    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium; .ci/run installs it)")
    from evals.runner import summarise

    cases = [c for c in load_cases() if c.set == "social"][:6]
    results = []
    for case in cases:
        resp = {"triage": {"language": case.language, "serious": case.labels.serious, "action": case.labels.action,
                           "type": case.labels.type, "reasons": ["a reason"]},
                "drafts": [{"text": f"Reply to {case.id}", "segments": [{"kind": "respond", "text": "x"}]}],
                "blocked": [], "knowledge": [], "holding": False, "usage": {"completion_tokens": 5}}
        results.append({"id": case.id, "repeat": 0, "slices": {"language": case.language, "type": case.labels.type,
                        "serious": str(case.labels.serious).lower(), "action": case.labels.action},
                        "message": case.message, "response": resp, "scores": score(case, resp), "latency_ms": 5.0, "tokens": 5})
    run = {"config": {"prompt": "suggest", "model": "fake", "repeat": 1}, "started": "now", "results": results,
           "summary": summarise(results)}
    html_path = tmp_path / "report.html"
    html_path.write_text(page(run, ["a problem"]), encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000"]
    shot = tmp_path / "report.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", html_path.as_uri()], capture_output=True, timeout=120)
    dom = subprocess.run([browser, *flags, "--dump-dom", html_path.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert shot.is_file() and shot.stat().st_size > 20_000, "the screenshot is missing or blank"
    assert f"{len(cases)} shown" in dom  # the table filter script ran in the browser
    assert dom.count('class="bar"') >= 10 and "Reply to " + cases[0].id in dom and "FAIL (1)" in dom


def test_make_eval_replays_the_recorded_cases_with_no_llm_and_passes_its_gates(tmp_path):
    """What `make eval` does in CI: all 160 cases (golden and social) through the pipeline on a freshly
    ingested knowledge base, the model's answers replayed from evals/recordings/, the gates and the
    baseline applied. A recording made against another state of the knowledge base or the prompts
    misses here (exit 2): re-record with `make eval-record`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TACTFUL_DATA_DIR": str(tmp_path / "data"),
           "TACTFUL_LLM_BASE_URL": "http://127.0.0.1:9/v1"}  # a closed port: any real call would fail
    ingest = subprocess.run([sys.executable, "-m", "api.cli", "ingest", str(ROOT / "knowledge" / "brands" / "acme"),
                             "--brand", "acme"], env=env, capture_output=True, text=True, timeout=300)
    assert ingest.returncode == 0, ingest.stderr
    done = _cli(["run", "--llm", "replay", "--model", "local", "--out", str(tmp_path / "out")], env, ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["summary"]["cases"] == len(load_cases()) == 160 and run["summary"]["errors"] == 0
    assert run["summary"]["overall"]["guardrail_pass"]["mean"] == 1.0


def _judging(body: dict) -> str:
    """The fake as drafter and as judge: the judge's prompts get JSON votes, one of them malformed."""
    system = body["messages"][0]["content"]
    if "senior customer-support lead" in system:
        return '{"empathy": 4, "tone_ok": true, "reason": "names the problem and gives a next step"}'
    if "knowledge base" in system:
        return 'Sure! {"supported": false, "unsupported": ["free replacement today"]}'
    return LABELLED


def test_the_llm_judge_votes_are_recorded_and_scored_and_replay_for_free(workdir, fake_llm):
    tmp, env = workdir
    fake_llm.reset(Step(reply=_judging))
    common = ["--cases", str(tmp / "cases" / "*.jsonl"), "--recordings", str(tmp / "rec"), "--gates", str(tmp / "gates.yaml"),
              "--judge-model", "fake"]
    (tmp / "gates.yaml").write_text("floors: {guardrail_pass: {min: 1.0}}\n")
    first = _cli(["run", *common, "--out", str(tmp / "a")], env, ROOT)
    assert first.returncode == 0, first.stdout + first.stderr
    judged = [r for r in fake_llm.requests if "senior customer-support lead" in r["messages"][0]["content"]]
    run = json.loads((tmp / "a" / "run.json").read_text())
    drafts = sum(len(r["response"]["drafts"]) for r in run["results"])
    assert drafts and len(judged) == 3 * drafts  # three votes per draft
    verdict = run["results"][0]["response"]["judge"][0]
    assert verdict["empathy"] == 4 and verdict["tone_ok"] is True and verdict["supported"] is False
    assert verdict["unsupported"] == ["free replacement today"] and verdict["agreement"] == 1.0
    overall = run["summary"]["overall"]
    assert overall["empathy_judged"]["mean"] == 0.75 and overall["tone_judged"]["mean"] == 1.0
    assert overall["claims_supported"]["mean"] == 0.0
    assert "judge: empathy 4/5, tone ok, unsupported: free replacement today" in (tmp / "a" / "report.html").read_text()
    # replayed: the same verdicts with no LLM behind it at all
    env_down = {**env, "TACTFUL_LLM_BASE_URL": "http://127.0.0.1:9/v1"}
    again = _cli(["run", *common, "--llm", "replay", "--out", str(tmp / "b")], env_down, ROOT)
    assert again.returncode == 0, again.stdout + again.stderr
    replayed = json.loads((tmp / "b" / "run.json").read_text())
    assert [r["response"]["judge"] for r in replayed["results"]] == [r["response"]["judge"] for r in run["results"]]


def test_judge_majority_and_ties():
    import asyncio

    from api.llm import ChatResult
    from evals.judge import Judge

    class Scripted:
        def __init__(self, answers):
            self.answers = list(answers)

        def new_case(self, salt=0):
            pass

        async def chat(self, messages, **_):
            return ChatResult(texts=[self.answers.pop(0)], model="m")

    votes = ['{"empathy": 2, "tone_ok": false, "reason": "cold"}', '{"empathy": 5, "tone_ok": true, "reason": "warm"}',
             "not json at all"]
    v = asyncio.run(Judge(Scripted(votes), "m").verdict("msg", "draft", "en", None))
    # two valid votes split 1-1: the stricter verdict, and the lower middle empathy score
    assert v.tone_ok is False and v.empathy == 2 and v.reason == "cold" and v.votes == 2 and v.supported is None


def test_the_same_request_twice_in_a_case_is_a_new_sample_recorded_and_replayed(tmp_path):
    """A suggestion whose drafts were all blocked sends the same prompt again for a new sample: the
    recordings must give it one (a second answer, recorded under its own key), not the first again."""
    import asyncio

    from api.llm import ChatResult
    from evals.recorder import RecordingLLM

    class Counting:
        def __init__(self):
            self.calls = 0

        async def chat(self, messages, **_):
            self.calls += 1
            return ChatResult(texts=[f"sample {self.calls}"], model="m")

    prompt = [{"role": "user", "content": "the same prompt"}]

    async def one_case(llm: RecordingLLM, salt: int = 0) -> list[str]:
        llm.new_case(salt)
        return [(await llm.chat(prompt)).texts[0] for _ in range(2)]

    inner = Counting()
    recording = RecordingLLM(inner, "m", mode="auto", directory=tmp_path)
    assert asyncio.run(one_case(recording)) == ["sample 1", "sample 2"] and inner.calls == 2
    assert asyncio.run(one_case(recording)) == ["sample 1", "sample 2"] and inner.calls == 2  # the next case: recorded
    replay = RecordingLLM(None, "m", mode="replay", directory=tmp_path)
    assert asyncio.run(one_case(replay)) == ["sample 1", "sample 2"]
    # a first request keeps the key it had before occurrences were counted: older recordings still replay
    blob = json.dumps({"model": "m", "messages": prompt, "n": 1, "max_tokens": 160, "temperature": 0.7, "repeat": 0},
                      sort_keys=True, ensure_ascii=False)
    assert replay.key(prompt, 1, 160, 0.7) == hashlib.sha256(blob.encode()).hexdigest()[:32]


class _Ranked:
    """A store whose searches rank as told: what another CPU's rounding can do to near-tied FAQs."""

    def __init__(self, store, order: list[str]):
        self.store, self.order = store, order

    def __getattr__(self, name):
        return getattr(self.store, name)

    def search(self, brand, text, k=3, kinds=None, language=None, min_score=None, vector=None):
        return [self.store.document_hit(brand, doc_id, 0.5) for doc_id in self.order[:k]]


def test_a_replay_ranks_the_knowledge_as_recorded_whatever_this_machines_search_says(store, tmp_path):
    """The prompt a recording is keyed by holds the retrieved FAQs, and the query embedding can rank
    near-tied FAQs differently on another CPU. The replay builds the same prompt from the recorded
    ranking, with the documents as they are now; what it cannot rebuild is a miss, never a guess."""
    from evals.recorder import RecordingStore, ReplayMiss

    message = "My parcel arrived broken"
    live = store.search("acme", message, 3, ["faq"])
    assert len(live) == 3
    recording = RecordingStore(store, mode="auto", directory=tmp_path)
    assert [h.id for h in recording.search("acme", message, 3, ["faq"])] == [h.id for h in live]

    swapped = [live[1].id, live[0].id, live[2].id]
    replay = RecordingStore(_Ranked(store, swapped), mode="replay", directory=tmp_path)
    hits = replay.search("acme", message, 3, ["faq"])
    assert hits == live  # ids, scores, texts, next steps: the recorded search, not this one
    assert (replay.searches, replay.ranked_differently) == (1, 1)
    with pytest.raises(ReplayMiss, match="never recorded"):
        replay.search("acme", "a message nobody recorded", 3, ["faq"])

    entry = json.loads((tmp_path / "knowledge-searches.jsonl").read_text().splitlines()[0])
    entry["hits"][0]["id"] = "faq-that-was-deleted"
    (tmp_path / "knowledge-searches.jsonl").write_text(json.dumps(entry) + "\n")
    with pytest.raises(ReplayMiss, match="no longer has"):
        RecordingStore(store, mode="replay", directory=tmp_path).search("acme", message, 3, ["faq"])
    # auto mode records this machine's ranking in place of the one it cannot use, and replays it from then on
    again = RecordingStore(_Ranked(store, swapped), mode="auto", directory=tmp_path)
    assert [h.id for h in again.search("acme", message, 3, ["faq"])] == swapped
    assert [h.id for h in RecordingStore(store, mode="replay", directory=tmp_path).search("acme", message, 3, ["faq"])] == swapped


def test_a_recorded_chunk_must_still_be_part_of_its_document(store, tmp_path):
    from evals.recorder import RecordingStore, ReplayMiss

    message = "How should we sound when a customer is angry?"
    chunks = RecordingStore(store, mode="auto", directory=tmp_path).search_chunks("acme", message, 2, ["voice"])
    assert chunks and RecordingStore(store, mode="replay", directory=tmp_path).search_chunks("acme", message, 2, ["voice"]) == chunks
    entry = json.loads((tmp_path / "knowledge-searches.jsonl").read_text().splitlines()[0])
    entry["hits"][0]["text"] = "Words the voice guide never had."
    (tmp_path / "knowledge-searches.jsonl").write_text(json.dumps(entry) + "\n")
    with pytest.raises(ReplayMiss, match="chunk that changed"):
        RecordingStore(store, mode="replay", directory=tmp_path).search_chunks("acme", message, 2, ["voice"])

