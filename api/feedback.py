"""What agents did with tactful's drafts: accepted, edited or rejected, stored in SQLite.

Every suggestion is kept (brand, message, channel, triage, drafts) so that feedback on it can
become a regression case: `tactful eval cases from-feedback` turns rejected and heavily edited
drafts into eval cases. The file lives under the data dir; nothing leaves the machine.
"""

from __future__ import annotations

import difflib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import SuggestRequest, SuggestResponse

HEAVY_EDIT = 0.4  # an edit that changes more than this share of the draft (1 - difflib ratio) counts as a rejection


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    suggestion_id: str = Field(min_length=5, max_length=40, pattern=r"^sug_[0-9a-f]+$")
    draft_index: int = Field(ge=0, le=9, description="Which of the suggestion's `drafts` the agent acted on.")
    outcome: Literal["accepted", "edited", "rejected"]
    final_text: str | None = Field(None, max_length=8000, description="What the agent sent, for `edited`.")


class FeedbackResponse(BaseModel):
    id: int
    suggestion_id: str
    edit_distance: float | None = Field(None, description="1 - similarity of the draft and the final text (0: unchanged).")


class UnknownSuggestion(LookupError):
    pass


class FeedbackStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.Lock()
        self._db.executescript("""
            CREATE TABLE IF NOT EXISTS suggestions (id TEXT PRIMARY KEY, created TEXT DEFAULT CURRENT_TIMESTAMP,
                brand TEXT, request TEXT, response TEXT);
            CREATE TABLE IF NOT EXISTS feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT DEFAULT CURRENT_TIMESTAMP,
                suggestion_id TEXT REFERENCES suggestions(id), draft_index INTEGER, outcome TEXT, final_text TEXT,
                edit_distance REAL);
        """)

    def remember(self, req: SuggestRequest, resp: SuggestResponse) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO suggestions (id, brand, request, response) VALUES (?, ?, ?, ?)",
                             (resp.id, req.brand, req.model_dump_json(), resp.model_dump_json()))

    def brand_of(self, suggestion_id: str) -> str | None:
        row = self._db.execute("SELECT brand FROM suggestions WHERE id = ?", (suggestion_id,)).fetchone()
        return row[0] if row else None

    def add(self, fb: FeedbackRequest) -> FeedbackResponse:
        with self._lock:
            row = self._db.execute("SELECT response FROM suggestions WHERE id = ?", (fb.suggestion_id,)).fetchone()
            if row is None:
                raise UnknownSuggestion(fb.suggestion_id)
            drafts = json.loads(row[0])["drafts"]
            if fb.draft_index >= len(drafts):
                raise IndexError(len(drafts))
            distance = None
            if fb.final_text is not None:
                distance = round(1 - difflib.SequenceMatcher(None, drafts[fb.draft_index]["text"], fb.final_text).ratio(), 4)
            cur = self._db.execute("INSERT INTO feedback (suggestion_id, draft_index, outcome, final_text, edit_distance) "
                                   "VALUES (?, ?, ?, ?, ?)", (fb.suggestion_id, fb.draft_index, fb.outcome, fb.final_text, distance))
            return FeedbackResponse(id=cur.lastrowid, suggestion_id=fb.suggestion_id, edit_distance=distance)

    def regressions(self, heavy_edit: float = HEAVY_EDIT) -> list[dict]:
        """Rejected drafts and heavy edits, with the suggestion they came from."""
        rows = self._db.execute("""SELECT f.id, f.outcome, f.final_text, f.edit_distance, f.draft_index, s.request, s.response
                                   FROM feedback f JOIN suggestions s ON s.id = f.suggestion_id
                                   WHERE f.outcome = 'rejected' OR (f.outcome = 'edited' AND f.edit_distance > ?)
                                   ORDER BY f.id""", (heavy_edit,)).fetchall()
        return [{"feedback_id": r[0], "outcome": r[1], "final_text": r[2], "edit_distance": r[3], "draft_index": r[4],
                 "request": json.loads(r[5]), "response": json.loads(r[6])} for r in rows]


def to_case(item: dict) -> dict:
    """An eval case from one piece of feedback: the customer's message, triage's labels as they were
    (a reviewer should confirm them), and the rejected draft's text as something not to write again."""
    req, resp = item["request"], item["response"]
    draft = resp["drafts"][item["draft_index"]]["text"]
    t = resp["triage"]
    return {
        "id": f"feedback-{item['feedback_id']}", "set": "feedback", "brand": req["brand"], "channel": req["channel"],
        "visibility": req["visibility"], "language": t["language"], "message": req["message"], "history": req.get("history") or [],
        "labels": {"type": t.get("type", "complaint"), "serious": t["serious"],
                   "category": next((c for c in t["categories"]), None), "action": t["action"], "escalate_to": t.get("escalate_to")},
        "expect": {"must_cite": [], "must_not": [draft] if item["outcome"] == "rejected" else [], "must_include": [],
                   "max_chars": 280 if req["channel"] in ("twitter", "x") else None},
        "source": f"feedback {item['feedback_id']}: {item['outcome']}"
                  + (f" (edit distance {item['edit_distance']})" if item["edit_distance"] is not None else "")
                  + (f"; the agent sent: {item['final_text']}" if item.get("final_text") else ""),
        "licence": "internal",
    }
