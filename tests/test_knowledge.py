"""Ingestion, retrieval and brand isolation on a real chromadb store."""

from __future__ import annotations

import json

import pytest

from knowledge.ingest import ingest, parse_file
from knowledge.store import KnowledgeStore, UnknownBrand
from tests.conftest import ACME


def test_sample_brand_is_complete(store):
    docs = store.documents("acme")
    faqs = [d for d in docs if d["kind"] == "faq"]
    assert len(faqs) >= 20 and any(d["kind"] == "voice" for d in docs)


def test_reingest_writes_nothing(store):
    report = ingest(store, "acme", ACME)
    assert report.added == [] and report.updated == [] and len(report.unchanged) >= 21


def test_search_finds_the_right_faq(store):
    cases = {
        "You charged me twice for the same order": "faq-charged-twice",
        "my parcel never came": "faq-lost-parcel",
        "I can't log in, my account is locked": "faq-account-locked",
        "My order arrived broken and nobody answers my emails. This is the third time!": "faq-damaged-item",
    }
    for text, expected in cases.items():
        ids = [h.id for h in store.search("acme", text, k=3, kinds=["faq"])]
        assert expected in ids, (text, ids)
        assert len(ids) == len(set(ids)), "a document appears once"


def test_search_kinds_filter_and_full_faq_text(store):
    hits = store.search("acme", "refund", k=5, kinds=["faq"])
    assert hits and all(h.kind == "faq" for h in hits)
    assert all(h.text and h.text != h.title for h in hits), "an FAQ hit carries its answer, not only the question"
    voice = store.search_chunks("acme", "how do we handle trolls", 2, ["voice"])
    assert voice and all(h.kind == "voice" for h in voice)


@pytest.mark.parametrize("text", ["how do we handle trolls", "My order arrived broken!", "comanda mea a ajuns stricată"])
def test_chunk_search_on_the_mirror_matches_chroma(store, text):
    store.search("acme", text)  # loads the brand's in-memory mirror
    assert store.in_memory("acme")
    mirror = store.search_chunks("acme", text, 3, ["voice"])
    index = store._indexes.pop("acme")  # without the mirror: Chroma's own query
    try:
        chroma = store.search_chunks("acme", text, 3, ["voice"])
    finally:
        store._indexes["acme"] = index
    assert [(h.id, h.text, round(h.score, 3)) for h in mirror] == [(h.id, h.text, round(h.score, 3)) for h in chroma]
    assert len(mirror) == 3 and all(h.kind == "voice" for h in mirror)


def test_brands_are_isolated(fresh_store, tmp_path):
    (tmp_path / "a.yaml").write_text("- id: faq-secret\n  question: What is the launch code?\n  answer: The code is 4711.\n")
    (tmp_path / "b.yaml").write_text("- id: faq-hello\n  question: Do you ship?\n  answer: We ship everywhere.\n")
    ingest(fresh_store, "alpha", tmp_path / "a.yaml")
    ingest(fresh_store, "beta", tmp_path / "b.yaml")
    assert {h.id for h in fresh_store.search("beta", "launch code", k=5)} == {"faq-hello"}
    with pytest.raises(UnknownBrand):
        fresh_store.search("gamma", "launch code")


def test_changed_document_replaces_its_chunks(fresh_store, tmp_path):
    path = tmp_path / "faqs.jsonl"
    path.write_text(json.dumps({"id": "faq-x", "question": "Opening hours?", "answer": "We open at 8:00."}) + "\n")
    assert ingest(fresh_store, "shop", path).added == ["faq-x"]
    path.write_text(json.dumps({"id": "faq-x", "question": "Opening hours?", "answer": "We open at 9:00 now."}) + "\n")
    assert ingest(fresh_store, "shop", path).updated == ["faq-x"]
    hits = fresh_store.search("shop", "opening hours", k=3)
    assert len(hits) == 1 and "9:00" in hits[0].text


def test_bad_files_are_named_and_the_rest_is_ingested(fresh_store, tmp_path):
    (tmp_path / "good.yaml").write_text("faqs:\n  - {id: faq-ok, question: 'Q?', answer: Fine.}\n")
    (tmp_path / "noanswer.yaml").write_text("faqs:\n  - {id: faq-ok2, question: 'Q2?', answer: Yes.}\n  - id: faq-bad\n    question: Where?\n")
    (tmp_path / "latin1.md").write_bytes("---\nid: v\n---\n# Voice\ncaf\xe9".encode("latin-1"))
    (tmp_path / "broken.json").write_text("[{\"id\": ")
    report = ingest(fresh_store, "shop", tmp_path)
    assert sorted(report.added) == ["faq-ok", "faq-ok2"]
    problems = {p.path: p for p in report.problems}
    assert problems["noanswer.yaml"].line == 3 and "answer" in problems["noanswer.yaml"].message
    assert "UTF-8" in problems["latin1.md"].message
    assert "JSON" in problems["broken.json"].message


def test_markdown_front_matter_and_voice_default(tmp_path):
    path = tmp_path / "voice-es.md"
    path.write_text("---\nlanguage: es\ntitle: Voz\n---\n# Tono\nCálido.\n\n# Trolls\nNo alimentar.\n")
    docs, problems = parse_file(path, tmp_path)
    assert not problems and docs[0].kind == "voice" and docs[0].language == "es" and docs[0].id == "voice-es"
    assert len(docs[0].chunks()) == 2


def test_ann_path_agrees_with_exact_search(settings, store):
    """Large brands are searched through Chroma's index instead of the in-memory mirror."""
    ann = KnowledgeStore(settings.model_copy(update={"knowledge_exact_max_chunks": 0}))
    for text in ["You charged me twice for the same order", "my parcel never came"]:
        exact = store.search("acme", text, k=3, kinds=["faq"])
        approx = ann.search("acme", text, k=3, kinds=["faq"])
        assert ann._indexes["acme"].vectors is None
        assert [h.id for h in approx][0] == [h.id for h in exact][0]


def test_other_workers_see_writes(fresh_store, tmp_path, monkeypatch):
    """A second store (another uvicorn worker) picks up a write after the version check interval."""
    import knowledge.store as store_module

    other = KnowledgeStore(fresh_store.settings)
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps({"id": "faq-x", "question": "Opening hours?", "answer": "We open at 8:00."}) + "\n")
    ingest(fresh_store, "shop", path)
    assert "8:00" in other.search("shop", "opening hours")[0].text
    path.write_text(json.dumps({"id": "faq-x", "question": "Opening hours?", "answer": "We open at 9:30."}) + "\n")
    ingest(fresh_store, "shop", path)
    monkeypatch.setattr(store_module, "VERSION_CHECK_SECONDS", 0.0)
    # the stale mirror answers at once while a background refresh picks up the write
    import time

    deadline = time.monotonic() + 10
    while "9:30" not in other.search("shop", "opening hours")[0].text:
        assert time.monotonic() < deadline, "the other worker never saw the write"
        time.sleep(0.05)


def test_concurrent_query_embeddings_are_batched_and_match_single_ones(store):
    import asyncio

    import numpy as np

    from knowledge.embeddings import QueryEmbedder

    calls = []

    def counting(texts, idle=False):
        calls.append(len(texts))
        return store.embed(texts)

    embedder = QueryEmbedder(counting)
    texts = [f"where is my order number {i}?" for i in range(20)]

    async def main():
        return await asyncio.gather(*(embedder(t) for t in texts))

    vectors = asyncio.run(main())
    assert sum(calls) == 20 and len(calls) < 20, calls
    single = np.asarray(store.embed([texts[7]])[0])
    assert np.allclose(vectors[7], single, atol=1e-4)


def test_a_lone_query_gets_the_quiet_session_and_a_stream_does_not(store):
    import asyncio

    import numpy as np

    from knowledge.embeddings import IDLE_NONE, IDLE_QUIET, IDLE_RUNNER, QUIET_SECONDS, MiniLMEmbeddingFunction, QueryEmbedder

    seen = []

    def recording(texts, idle=IDLE_NONE):
        seen.append(idle)
        return store.embed(texts)

    embedder = QueryEmbedder(recording)

    async def main():
        await embedder("first query after a quiet spell")
        await embedder("right after it")  # free machine, but not quiet: a stream of requests
        await asyncio.gather(*(embedder(f"burst {i}") for i in range(6)))
        await asyncio.sleep(QUIET_SECONDS + 0.05)
        await embedder("quiet again")

    asyncio.run(main())
    assert seen[:2] == [IDLE_QUIET, IDLE_RUNNER]
    assert IDLE_NONE in seen[2:-1] and IDLE_QUIET not in seen[2:-1]
    assert seen[-1] == IDLE_QUIET
    # every session gives the same vector: which one runs is a matter of speed only
    embed = MiniLMEmbeddingFunction()
    text = ["My order arrived broken and nobody answers my emails."]
    vectors = [embed.embed_texts(text, idle) for idle in (IDLE_NONE, IDLE_RUNNER, IDLE_QUIET)]
    assert all(np.allclose(vectors[0], v, atol=1e-5) for v in vectors[1:])


def test_a_vector_does_not_depend_on_the_texts_embedded_with_it(store):
    """The int8 model quantises its activations over a whole run; each text runs alone, so a batch
    (an ingest, a burst of queries) gives every text exactly the vector it gets on its own."""
    import numpy as np

    text = "My order arrived broken and nobody answers my emails."
    alone = store.embed.embed_texts([text])[0]
    others = ["ok", "A much longer message about a refund that never arrived after I returned the jacket " * 3]
    for batch in ([others[0], text], [text, others[1]], [others[1], text, others[0]]):
        assert np.array_equal(store.embed.embed_texts(batch)[batch.index(text)], alone)
    assert abs(float(np.linalg.norm(alone)) - 1.0) < 1e-5


def test_the_int8_model_is_derived_once_and_rebuilt_when_unreadable(tmp_path, monkeypatch, caplog):
    import onnxruntime.quantization as quantization

    from knowledge import embeddings

    calls = []
    real = quantization.quantize_dynamic
    monkeypatch.setattr(quantization, "quantize_dynamic", lambda *a, **k: calls.append(1) or real(*a, **k))
    path = embeddings.derived_model(tmp_path)
    assert calls == [1] and path.parent == tmp_path and list(tmp_path.iterdir()) == [path]  # no temporary left
    assert embeddings.derived_model(tmp_path) == path and calls == [1]
    assert "not the pinned" not in caplog.text  # the locked onnx/onnxruntime give the pinned bytes

    path.write_bytes(b"not a model")
    monkeypatch.setattr(embeddings.MiniLMEmbeddingFunction, "_shared", None)
    vector = embeddings.MiniLMEmbeddingFunction(cache_dir=tmp_path).embed_texts(["my parcel never came"])[0]
    assert calls == [1, 1] and path.stat().st_size > 1_000_000 and vector.shape == (384,)


def test_the_derived_model_has_one_attention_operator_per_layer_and_the_packaged_models_vectors(store):
    """The export spells each layer's attention out in ~40 operators; the derived model has one
    (knowledge/attention.py). Same model: its vectors are the packaged graph's, run as it ships."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    from knowledge import embeddings

    derived = embeddings.derived_model(embeddings.default_cache_dir())
    ops = [n.op_type for n in onnx.load(str(derived)).graph.node]
    assert ops.count("MultiHeadAttention") == 6 and "Softmax" not in ops and len(ops) < 300  # 450 unfused
    packaged = ort.InferenceSession(str(embeddings.model_files()[0]), providers=["CPUExecutionProvider"])
    tokenizer, *_ = store.embed._load()
    texts = ["My order arrived broken and nobody answers my emails.", "Comanda mea a ajuns stricată.", "退款什么时候到账？"]
    for text, vector in zip(texts, store.embed.embed_texts(texts)):
        ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
        pooled = packaged.run(None, embeddings.feeds(packaged, ids))[0][0].mean(axis=0)
        assert float(vector @ (pooled / np.linalg.norm(pooled))) > 0.98, text


def test_an_attention_rewrite_that_does_not_fit_the_graph_leaves_it_as_it_was(tmp_path, monkeypatch, caplog):
    """Another export (no recognisable projections), or a rewrite whose numbers differ from the
    original graph's: the model is quantised unfused, slower but right, and the log says so."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from knowledge import attention, embeddings

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "other",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    with pytest.raises(attention.AttentionPatternMissing):
        attention.fuse_attention(helper.make_model(graph))

    # a real fold of the packaged model, rewritten with the wrong head count: the check must catch it
    folded = embeddings.fold(ort, embeddings.model_files()[0], tmp_path / "float.onnx")
    assert embeddings._with_fused_attention(ort, folded, tmp_path / "fused.onnx") == tmp_path / "fused.onnx"
    real = attention.fuse_attention
    monkeypatch.setattr(attention, "fuse_attention", lambda model: real(model, num_heads=6))
    assert embeddings._with_fused_attention(ort, folded, tmp_path / "wrong.onnx") == folded
    assert "differs" in caplog.text
    onnx.checker.check_model(str(folded))  # the original is left whole


def test_chunks_embedded_by_another_model_are_embedded_again(fresh_store, tmp_path):
    """An older tactful's vectors (float MiniLM) sit next to this one's: the next ingest re-makes them."""
    faqs = tmp_path / "faqs.yaml"
    faqs.write_text("- id: faq-a\n  question: Where is my parcel?\n  answer: Track it under Account > Orders.\n")
    assert ingest(fresh_store, "shop", tmp_path).added == ["faq-a"]
    col = fresh_store._collection("shop", create=False)
    got = col.get(include=["metadatas"])
    col.update(ids=got["ids"], metadatas=[{**m, "embedding": "all-MiniLM-L6-v2-onnx-int8"} for m in got["metadatas"]])
    assert ingest(fresh_store, "shop", tmp_path).updated == ["faq-a"]
    assert ingest(fresh_store, "shop", tmp_path).unchanged == ["faq-a"]


def test_embedding_failure_reaches_every_waiter():
    import asyncio

    from knowledge.embeddings import QueryEmbedder

    def broken(texts, idle=False):
        raise RuntimeError("model file unreadable")

    embedder = QueryEmbedder(broken)

    async def main():
        return await asyncio.gather(*(embedder("x") for _ in range(5)), return_exceptions=True)

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(main()))


def test_an_entry_removed_from_a_file_leaves_no_orphan_and_prune_removes_vanished_files(fresh_store, tmp_path):
    kb = tmp_path / "kb"
    kb.mkdir()
    faqs = kb / "faqs.yaml"
    faqs.write_text("- {id: faq-a, question: 'Opening hours?', answer: 'We open at 8.'}\n"
                    "- {id: faq-b, question: 'Parking?', answer: 'Free parking behind the shop.'}\n")
    (kb / "voice.md").write_text("# Tone\nWarm and plain.\n")
    first = ingest(fresh_store, "shop", kb)
    assert sorted(first.added) == ["faq-a", "faq-b", "voice"]
    again = ingest(fresh_store, "shop", kb)
    assert again.wrote_nothing and "nothing to write" in again.summary("shop")
    # faq-b leaves the file: its chunks go too
    faqs.write_text("- {id: faq-a, question: 'Opening hours?', answer: 'We open at 8.'}\n")
    assert ingest(fresh_store, "shop", kb).removed == ["faq-b"]
    assert {h.id for h in fresh_store.search("shop", "parking", k=5)} == {"faq-a", "voice"}
    # a vanished file is only removed with prune
    (kb / "voice.md").unlink()
    assert ingest(fresh_store, "shop", kb).removed == []
    assert ingest(fresh_store, "shop", kb, prune=True).removed == ["voice"]
    assert [d["id"] for d in fresh_store.documents("shop")] == ["faq-a"]


def test_a_file_with_a_problem_never_loses_its_documents(fresh_store, tmp_path):
    faqs = tmp_path / "faqs.yaml"
    faqs.write_text("- {id: faq-a, question: 'Q?', answer: 'A.'}\n- {id: faq-b, question: 'R?', answer: 'B.'}\n")
    ingest(fresh_store, "shop", faqs)
    faqs.write_text("- {id: faq-a, question: 'Q?', answer: 'A.'}\n- {id: faq-b, question: 'R?'}\n")  # answer lost by mistake
    report = ingest(fresh_store, "shop", tmp_path, prune=True)
    assert report.removed == [] and report.problems
    assert {d["id"] for d in fresh_store.documents("shop")} == {"faq-a", "faq-b"}


def test_an_faqs_next_step_is_stored_searched_and_a_new_one_rewrites_it(fresh_store, tmp_path):
    faqs = tmp_path / "faqs.yaml"
    faqs.write_text("- {id: faq-a, question: 'My parcel arrived damaged', answer: 'Report it with a photo; we replace it.',\n"
                    "   next_step: 'Please add a photo, and we will send a replacement.'}\n"
                    "- {id: faq-b, question: 'Opening hours?', answer: 'We open at 8.'}\n")
    assert sorted(ingest(fresh_store, "shop", faqs).added) == ["faq-a", "faq-b"]
    hits = {h.id: h for h in fresh_store.search("shop", "parcel damaged", k=2)}
    assert hits["faq-a"].next_step == "Please add a photo, and we will send a replacement."
    assert hits["faq-b"].next_step is None
    # only the next step changes: the FAQ is rewritten, the other one is not
    faqs.write_text(faqs.read_text().replace("we will send a replacement", "we will refund you"))
    again = ingest(fresh_store, "shop", faqs)
    assert again.updated == ["faq-a"] and again.unchanged == ["faq-b"]
    assert fresh_store.search("shop", "parcel damaged", k=1)[0].next_step == "Please add a photo, and we will refund you."


def test_an_faq_whose_next_step_fails_a_guardrail_is_reported_with_its_line_and_not_ingested(fresh_store, tmp_path):
    faqs = tmp_path / "faqs.yaml"
    faqs.write_text("- {id: faq-a, question: 'Opening hours?', answer: 'We open at 8.'}\n"
                    "- {id: faq-b, question: 'Broken item?', answer: 'We replace it.', next_step: 'You should have checked it.'}\n")
    report = ingest(fresh_store, "shop", faqs)
    assert report.added == ["faq-a"]
    [problem] = report.problems
    assert problem.line == 2 and "blame" in problem.message and "next_step" in problem.message


def _mirror_of(rows: list[tuple[str, str, str, list[float]]]):
    """A mirror built from (doc_id, kind, language, vector) chunks, in that (not document) order."""
    import numpy as np

    from knowledge import mirror

    vectors = [(np.asarray(v) / np.linalg.norm(v)).astype(np.float32) for *_, v in rows]
    metas = [{"doc_id": d, "kind": k, "language": lang, "title": d, "chunk": i} for i, (d, k, lang, _) in enumerate(rows)]
    got = {"ids": [f"c{i}" for i in range(len(rows))], "metadatas": metas, "documents": [d for d, *_ in rows],
           "embeddings": vectors}
    return mirror.build("v1", 0.0, got, with_vectors=True)


@pytest.mark.parametrize("kinds,language", [(None, None), (["faq"], None), (["voice"], "en"), (["faq", "voice"], "ro"),
                                            (["policy"], None)])
def test_a_filter_worked_out_once_gives_each_documents_best_chunk_and_the_nearest_chunks(kinds, language):
    """The kinds/language selection is computed once per mirror and reused; what a search gets from it
    must equal the plain definition: per document the best cosine of its kept chunks, and the kept
    chunks nearest first (ties in chunk order), whatever order the chunks came in."""
    import numpy as np

    from knowledge import mirror

    rows = [("b", "faq", "en", [1, 0.2, 0]), ("a", "voice", "en", [0.1, 1, 0]), ("b", "faq", "ro", [0.9, 0.1, 0.3]),
            ("c", "faq", "en", [0, 0, 1]), ("a", "faq", "ro", [0.5, 0.5, 0.1]), ("b", "voice", "ro", [1, 0.2, 0]),
            ("c", "voice", "en", [0.3, 0.3, 0.3])]
    index = _mirror_of(rows)
    query = np.asarray([0.8, 0.3, 0.1], dtype=np.float32)
    query /= np.linalg.norm(query)
    sims = index.vectors @ query
    kept = [i for i, (_, k, lang, _) in enumerate(rows) if (not kinds or k in kinds) and (not language or lang == language)]
    expected = {d: max(float(sims[i]) for i in kept if rows[i][0] == d) for d in {rows[i][0] for i in kept}}
    for _ in range(2):  # the second time from the cached selection
        best = mirror.best_per_document(index, query, kinds, language)
        got = {d: float(best[p]) for d, p in index.position.items() if np.isfinite(best[p])}
        assert got == pytest.approx(expected, abs=0)
        nearest = [(h.id, h.score) for h in mirror.nearest_chunks(index, query, 3, kinds, language)]
        order = sorted(kept, key=lambda i: -sims[i])[:3]
        assert nearest == [(rows[i][0], round(float(sims[i]), 4)) for i in order]
    assert len(index.selections) == 1
    for n in range(mirror.MAX_SELECTIONS + 5):  # a client sending a new language each time: the cache stays bounded
        assert not np.isfinite(mirror.best_per_document(index, query, kinds, f"x{n}")).any()
    assert len(index.selections) == mirror.MAX_SELECTIONS


def test_the_version_check_waits_for_a_lull_in_searches_and_never_holds_one_up(fresh_store, tmp_path, monkeypatch):
    """A due check starts only once no search has come for LULL_SECONDS (it is a Chroma round trip that
    shared the CPU with the suggestion that found it due), or after LULL_MAX_SECONDS on a busy server;
    the search that found it due is answered from the mirror at once."""
    import threading
    import time

    import knowledge.store as store_module

    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps({"id": "faq-x", "question": "Opening hours?", "answer": "We open at 8:00."}) + "\n")
    ingest(fresh_store, "shop", path)
    fresh_store.search("shop", "opening hours")
    monkeypatch.setattr(store_module, "VERSION_CHECK_SECONDS", 0.0)
    monkeypatch.setattr(store_module, "LULL_SECONDS", 0.4)
    monkeypatch.setattr(store_module, "LULL_MAX_SECONDS", 1.5)
    started, done, slow_check = [], threading.Event(), fresh_store._load_index

    def check(brand, cached):
        started.append(time.monotonic())
        time.sleep(0.5)  # a slow store: no search may wait for it
        try:
            return slow_check(brand, cached)
        finally:
            done.set()

    monkeypatch.setattr(fresh_store, "_load_index", check)
    t0 = time.monotonic()
    assert "8:00" in fresh_store.search("shop", "opening hours")[0].text
    assert time.monotonic() - t0 < 0.3, "the search waited for the version check"
    assert done.wait(5) and started[0] - t0 >= 0.35, "the check started before the lull"

    # searches every 0.1 s: never a lull of 0.4 s, so the check runs once LULL_MAX_SECONDS have passed
    started.clear()
    done.clear()
    t0 = time.monotonic()
    while not started and time.monotonic() - t0 < 4:
        fresh_store.search("shop", "opening hours")
        time.sleep(0.1)
    assert started and 1.3 <= started[0] - t0 <= 2.5, started and started[0] - t0
    assert done.wait(5)
