"""A brand's knowledge mirrored in memory: what a search reads instead of asking Chroma.

The store (knowledge/store.py) decides when a mirror is loaded or refreshed; this module holds
what is in it and the exact search over it, a few numpy operations per query.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rank_bm25 import BM25Okapi

from knowledge.lexical import Postings, lexical_tokens


@dataclass
class Hit:
    id: str
    kind: str
    title: str
    language: str
    score: float
    text: str
    url: str | None = None
    next_step: str | None = None  # an FAQ's own "what we do" sentence for a direct message


@dataclass
class BrandIndex:
    """A brand's documents mirrored in memory: metadata, full texts, lexical postings, and (for
    brands small enough) the chunk vectors, so a query is a few numpy operations instead of a
    round trip to Chroma. Rebuilt when the collection's write version changes."""
    version: str
    checked: float
    meta: dict[str, dict]
    text: dict[str, str]
    order: list[str]  # document ids; every per-document array below follows this order
    position: dict[str, int]
    lexical: Postings | None
    chunk_doc: np.ndarray  # per chunk: its document's position in `order`
    chunk_kind: np.ndarray
    chunk_lang: np.ndarray
    vectors: np.ndarray | None  # None: too many chunks, ask Chroma's HNSW index instead
    chunks: list[tuple[dict, str]]  # per chunk: its metadata and text (empty when `vectors` is None)


def build(version: str, checked: float, got: dict[str, list], with_vectors: bool) -> BrandIndex:
    """The mirror of a collection from everything `col.get` returned for it (ids, metadatas,
    documents, and embeddings when `with_vectors`)."""
    meta: dict[str, dict] = {}
    parts: dict[str, list[tuple[int, str]]] = {}
    for m, d in zip(got["metadatas"], got["documents"]):
        meta.setdefault(m["doc_id"], m)
        if m.get("role", "body") == "body":
            parts.setdefault(m["doc_id"], []).append((int(m.get("chunk", 0)), d))
    text = {doc_id: "\n\n".join(t for _, t in sorted(ps)) for doc_id, ps in parts.items()}
    order = sorted(meta)
    position = {doc_id: i for i, doc_id in enumerate(order)}
    corpus = [lexical_tokens(f"{meta[i]['title']} {meta[i].get('tags', '')} {text.get(i, '')}") for i in order]
    vectors = np.asarray(got["embeddings"], dtype=np.float32) if with_vectors and len(got["ids"]) else None
    return BrandIndex(version=version, checked=checked, meta=meta, text=text, order=order, position=position,
                      lexical=Postings(BM25Okapi(corpus), len(order)) if any(corpus) else None,
                      chunk_doc=np.asarray([position[m["doc_id"]] for m in got["metadatas"]], dtype=np.int32),
                      chunk_kind=np.asarray([m["kind"] for m in got["metadatas"]]),
                      chunk_lang=np.asarray([m["language"] for m in got["metadatas"]]), vectors=vectors,
                      chunks=list(zip(got["metadatas"], got["documents"])) if vectors is not None else [])


def cosines(index: BrandIndex, vector: np.ndarray, kinds: list[str] | None,
            language: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Every mirrored chunk's cosine to `vector` (vectors are L2-normalised: the dot product is the
    cosine), and which chunks the kinds/language filter keeps."""
    sims = index.vectors @ vector
    keep = np.ones(len(sims), dtype=bool)
    if kinds:
        keep &= np.isin(index.chunk_kind, kinds)
    if language:
        keep &= index.chunk_lang == language
    return sims, keep


def nearest_chunks(index: BrandIndex, vector: np.ndarray, k: int, kinds: list[str] | None,
                   language: str | None) -> list[Hit]:
    """The k chunks closest to `vector`, best first, as Chroma would return them."""
    sims, keep = cosines(index, vector, kinds, language)
    ranked = np.flatnonzero(keep)
    ranked = ranked[np.argsort(-sims[ranked], kind="stable")][: max(k, 1)]
    hits = []
    for i in ranked.tolist():
        meta, doc = index.chunks[i]
        hits.append(Hit(id=meta["doc_id"], kind=meta["kind"], title=meta["title"], language=meta["language"],
                        score=round(float(sims[i]), 4), text=doc, url=meta.get("url") or None))
    return hits


def best_per_document(index: BrandIndex, vector: np.ndarray, kinds: list[str] | None,
                      language: str | None) -> np.ndarray:
    """Per document (in `index.order`): the best cosine of its chunks; -inf where the filter excludes it."""
    best = np.full(len(index.order), -np.inf, dtype=np.float32)
    sims, keep = cosines(index, vector, kinds, language)
    np.maximum.at(best, index.chunk_doc[keep], sims[keep])
    return best
