"""POST /v1/feedback and `tactful eval cases from-feedback`, through real HTTP and the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from evals.cases import load_cases
from tests.conftest import ROOT
from tests.fake_llm import Step
from tests.test_suggest_api import GOOD, suggest


def _feedback(client, **body):
    return client.post("/v1/feedback", json=body)


def _wait_remembered(client, suggestion_id: str) -> None:
    for _ in range(50):  # the suggestion is stored after its response is sent
        r = _feedback(client, suggestion_id=suggestion_id, draft_index=0, outcome="accepted")
        if r.status_code != 404:
            assert r.status_code == 201, r.text
            return
        time.sleep(0.05)
    raise AssertionError("the suggestion was never stored")


def test_feedback_is_validated_and_turned_into_regression_cases(client, fake_llm, settings, tmp_path):
    fake_llm.reset(Step(content=GOOD))
    sid = suggest(client, n=1).json()["id"]
    _wait_remembered(client, sid)
    assert _feedback(client, suggestion_id="sug_00000000", draft_index=0, outcome="accepted").status_code == 404
    bad_index = _feedback(client, suggestion_id=sid, draft_index=3, outcome="rejected")
    assert bad_index.status_code == 422 and bad_index.json()["error"]["field"] == "draft_index"
    no_text = _feedback(client, suggestion_id=sid, draft_index=0, outcome="edited")
    assert no_text.status_code == 422 and no_text.json()["error"]["field"] == "final_text"
    assert _feedback(client, suggestion_id=sid, draft_index=0, outcome="maybe").status_code == 422

    light = _feedback(client, suggestion_id=sid, draft_index=0, outcome="edited", final_text=GOOD.replace("so sorry", "sorry"))
    heavy = _feedback(client, suggestion_id=sid, draft_index=0, outcome="edited",
                      final_text="Hi Sam, a replacement is on its way today; tracking follows by email.")
    rejected = _feedback(client, suggestion_id=sid, draft_index=0, outcome="rejected")
    assert light.json()["edit_distance"] < 0.1 < 0.4 < heavy.json()["edit_distance"] and rejected.status_code == 201

    out = tmp_path / "feedback.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TACTFUL_DATA_DIR": str(settings.data_dir)}
    for _ in range(2):  # a second run adds nothing: cases are keyed by feedback id
        done = subprocess.run([sys.executable, "-m", "api.cli", "eval", "cases", "from-feedback", "--out", str(out)],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    cases = load_cases(tmp_path, pattern="feedback.jsonl")
    assert {c.source.split(":")[1].strip().split(" ")[0] for c in cases} == {"edited", "rejected"}  # not the light edit
    assert all(c.message.startswith("My order arrived broken") and c.set == "feedback" for c in cases)
    assert any(GOOD in c.expect.must_not for c in cases)
    assert len([json.loads(line) for line in out.read_text().splitlines()]) == len(cases) == 2
