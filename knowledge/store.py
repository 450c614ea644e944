"""The chromadb-backed knowledge store: one collection per brand, so one brand's
query can never reach another brand's documents."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import chromadb
from chromadb.config import Settings as ChromaSettings

from api.settings import Settings
from knowledge.documents import Document, brand_ok
from knowledge.embeddings import EMBEDDING_ID, MiniLMEmbeddingFunction
from knowledge import mirror
from knowledge.lexical import lexical_tokens
from knowledge.mirror import BrandIndex, Hit

_PREFIX = "brand-"
# Hybrid score = VECTOR_WEIGHT * cosine + (1 - VECTOR_WEIGHT) * BM25 scaled to the best match.
# MiniLM alone misses "arrived broken" -> the damaged-item FAQ when a message mixes topics;
# the lexical signal catches the shared words.
VECTOR_WEIGHT = 0.7
# Other workers' writes become visible a moment after this many seconds; this process's own at once.
VERSION_CHECK_SECONDS = 2.0
# The check waits for a lull: no search for LULL_SECONDS, or LULL_MAX_SECONDS at most on a busy server.
LULL_SECONDS, LULL_MAX_SECONDS = 0.05, 1.0
MIRROR_PAGE = 10_000
# One long-lived thread for every store's version checks: a new thread per check made the search that found
# the mirror due wait until that thread was up (~0.4 ms of the retrieve stage at concurrency 1, side by side),
# while a pool's idle worker is woken without waiting.
_CHECKS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tactful-mirror-check")


class StoreUnavailable(RuntimeError):
    """The vector store cannot be reached (Chroma server down, disk unreadable)."""


@contextmanager
def _store_call():
    """Any failure of the store itself (server down, timeouts) surfaces as StoreUnavailable: a 503, never a 500."""
    try:
        yield
    except (UnknownBrand, StoreUnavailable):
        raise
    except Exception as exc:
        raise StoreUnavailable(str(exc)) from exc


class UnknownBrand(LookupError):
    pass


class KnowledgeStore:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.embed = MiniLMEmbeddingFunction(cache_dir=settings.model_cache)
        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        try:
            if settings.chroma_host:
                self.client = chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
            else:
                settings.chroma_path.mkdir(parents=True, exist_ok=True)
                self.client = chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)
        except Exception as exc:
            raise StoreUnavailable(f"cannot open the knowledge store: {exc}") from exc
        self._collections: dict[str, object] = {}
        self._indexes: dict[str, BrandIndex] = {}
        self._lock = threading.Lock()
        self._refreshing: set[str] = set()
        self._last_search = float("-inf")  # monotonic time of the latest mirror lookup

    # -- brands ---------------------------------------------------------------
    def brands(self) -> list[str]:
        try:
            names = [c if isinstance(c, str) else c.name for c in self.client.list_collections()]
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc
        return sorted(n[len(_PREFIX):] for n in names if n.startswith(_PREFIX))

    def _collection(self, brand: str, create: bool):
        if not brand_ok(brand):
            raise UnknownBrand(brand)
        with self._lock:
            if brand in self._collections:
                return self._collections[brand]
            if create:
                try:
                    col = self.client.get_or_create_collection(
                        _PREFIX + brand, embedding_function=self.embed, configuration={"hnsw": {"space": "cosine"}})
                except Exception as exc:
                    raise StoreUnavailable(str(exc)) from exc
            else:
                try:
                    col = self._fetch(brand)
                except UnknownBrand:
                    return None
            self._collections[brand] = col
            return col

    def _fetch(self, brand: str):
        """The brand's collection, fresh from Chroma (metadata included)."""
        try:
            return self.client.get_collection(_PREFIX + brand, embedding_function=self.embed)
        except Exception as exc:
            if "does not exist" in str(exc).lower() or "not found" in str(exc).lower():
                raise UnknownBrand(brand) from exc
            raise StoreUnavailable(str(exc)) from exc

    def ping(self) -> bool:
        try:
            self.client.heartbeat()
            return True
        except Exception:
            return False

    # -- documents ------------------------------------------------------------
    def upsert(self, brand: str, doc: Document) -> str:
        """Write one document, all chunks or none. Returns added | updated | unchanged."""
        return self.upsert_many(brand, [doc])[0]

    def upsert_many(self, brand: str, docs: list[Document]) -> list[str]:
        """Write documents in as few store calls as possible; each document is all in or all out
        (its chunks always travel in one write). Returns added | updated | unchanged per document."""
        col = self._collection(brand, create=True)
        try:
            old = col.get(where={"doc_id": {"$in": [d.id for d in docs]}}, include=["metadatas"])
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc
        old_ids: dict[str, list[str]] = {}
        old_hashes: dict[str, set[tuple[str, str]]] = {}
        for chunk_id, meta in zip(old["ids"], old["metadatas"]):
            old_ids.setdefault(meta["doc_id"], []).append(chunk_id)
            # a chunk embedded by another model (an older tactful) counts as changed: its vector is re-made
            old_hashes.setdefault(meta["doc_id"], set()).add((meta.get("content_hash"), meta.get("embedding")))
        outcomes: list[str] = []
        writes: list[tuple[Document, list[str], list[str], list[str]]] = []
        for doc in docs:
            if old_hashes.get(doc.id) == {(doc.content_hash, EMBEDDING_ID)}:
                outcomes.append("unchanged")
                continue
            outcomes.append("updated" if doc.id in old_ids else "added")
            chunks = doc.chunks()
            roles = ["body"] * len(chunks)
            to_embed = [f"{doc.title}\n{c}" if doc.kind == "faq" else c for c in chunks]
            if doc.kind == "faq":  # customers phrase problems like questions: match the question on its own too
                chunks, roles, to_embed = [doc.title, *chunks], ["question", *roles], [doc.title, *to_embed]
            writes.append((doc, chunks, roles, to_embed))
        if not writes:
            return outcomes
        # Embed first: if the model fails nothing has been written yet.
        vectors = iter(self.embed([text for *_, to_embed in writes for text in to_embed]))
        batch: dict[str, list] = {"ids": [], "embeddings": [], "documents": [], "metadatas": []}
        stale: list[str] = []
        limit = self._max_batch()
        for doc, chunks, roles, to_embed in writes:
            if batch["ids"] and len(batch["ids"]) + len(chunks) > limit:
                self._write(col, batch)
                batch = {key: [] for key in batch}
            metadata = {"doc_id": doc.id, "kind": doc.kind, "title": doc.title, "language": doc.language,
                        "source": doc.source, "url": doc.url or "", "content_hash": doc.content_hash,
                        "embedding": EMBEDDING_ID, "updated_at": doc.updated_at, "tags": ",".join(doc.tags), "next_step": doc.next_step or ""}
            ids = [f"{doc.id}#{i}" for i in range(len(chunks))]
            batch["ids"] += ids
            batch["embeddings"] += [next(vectors) for _ in to_embed]
            batch["documents"] += chunks
            batch["metadatas"] += [{**metadata, "chunk": i, "role": roles[i]} for i in range(len(chunks))]
            stale += [i for i in old_ids.get(doc.id, []) if i not in set(ids)]
        self._write(col, batch)
        try:
            if stale:  # a shorter new version: drop the old version's extra chunks
                col.delete(ids=stale)
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc
        self._bump(brand, col)
        return outcomes

    def _max_batch(self) -> int:
        try:
            return int(self.client.get_max_batch_size())
        except Exception:
            return 5000

    @staticmethod
    def _write(col, batch: dict[str, list]) -> None:
        try:
            col.upsert(**batch)
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc

    def delete(self, brand: str, doc_id: str) -> bool:
        col = self._collection(brand, create=False)
        if col is None:
            raise UnknownBrand(brand)
        with _store_call():
            found = col.get(where={"doc_id": doc_id}, include=[])["ids"]
            if found:
                col.delete(ids=found)
                self._bump(brand, col)
        return bool(found)

    def _bump(self, brand: str, col) -> None:
        """Record a write in the collection's metadata so every worker rebuilds its mirror."""
        col.modify(metadata={"tactful_version": uuid.uuid4().hex})
        self._indexes.pop(brand, None)

    def documents(self, brand: str) -> list[dict]:
        col = self._collection(brand, create=False)
        if col is None:
            raise UnknownBrand(brand)
        docs: dict[str, dict] = {}
        with _store_call():
            metadatas = col.get(include=["metadatas"])["metadatas"]
        for meta in metadatas:
            d = docs.setdefault(meta["doc_id"], {
                "id": meta["doc_id"], "kind": meta["kind"], "title": meta["title"], "language": meta["language"],
                "source": meta["source"], "updated_at": meta["updated_at"], "content_hash": meta["content_hash"], "chunks": 0})
            d["chunks"] += 1
        return sorted(docs.values(), key=lambda d: (d["kind"], d["id"]))

    # -- retrieval ------------------------------------------------------------
    def search_chunks(self, brand: str, text: str, k: int, kinds: list[str] | None = None,
                      language: str | None = None, vector: np.ndarray | None = None) -> list[Hit]:
        """The k chunks closest to `text`, best first."""
        if self.in_memory(brand):  # the mirror has every chunk's vector: no Chroma round trip (4 ms, measured)
            return mirror.nearest_chunks(self._index(brand), self._vector(text, vector), k, kinds, language)
        col = self._collection(brand, create=False)
        if col is None:
            raise UnknownBrand(brand)
        filters = []
        if kinds:
            filters.append({"kind": {"$in": list(kinds)}})
        if language:
            filters.append({"language": language})
        where = None if not filters else filters[0] if len(filters) == 1 else {"$and": filters}
        try:
            count = col.count()
            if count == 0:
                return []
            query = [vector] if vector is not None else self.embed([text])
            res = col.query(query_embeddings=query, n_results=min(count, max(k, 1)), where=where,
                            include=["metadatas", "documents", "distances"])
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc
        hits = []
        for meta, doc, dist in zip(res["metadatas"][0], res["documents"][0], res["distances"][0]):
            hits.append(Hit(id=meta["doc_id"], kind=meta["kind"], title=meta["title"], language=meta["language"],
                            score=round(1.0 - float(dist), 4), text=doc, url=meta.get("url") or None))
        return hits

    def _index(self, brand: str) -> BrandIndex:
        """The brand's mirror. A stale one is still served while a background thread checks
        the version (stale-while-revalidate): the Chroma round trip never lands on a request,
        and other workers' writes show up a moment after the interval instead of on it."""
        cached = self._indexes.get(brand)
        if cached is None:
            return self._load_index(brand, None)
        self._last_search = now = time.monotonic()
        if now - cached.checked >= VERSION_CHECK_SECONDS:
            with self._lock:
                start = brand not in self._refreshing
                self._refreshing.add(brand)
            if start:
                _CHECKS.submit(self._refresh, brand, cached)
        return cached

    def _refresh(self, brand: str, cached: BrandIndex) -> None:
        try:
            self._await_lull()
            self._load_index(brand, cached)
        except Exception:  # the store is down: keep serving the mirror; the next search tries again
            pass
        finally:
            with self._lock:
                self._refreshing.discard(brand)

    def _await_lull(self) -> None:
        """Until no search has started for LULL_SECONDS (LULL_MAX_SECONDS at most). The check is a
        Chroma round trip, milliseconds of Python: started at once, it shared the CPU and the GIL
        with the very suggestion that found the mirror due, which at concurrency 1 (suggestions more
        than VERSION_CHECK_SECONDS apart) is every suggestion. Measured side by side in the overhead
        benchmark: its retrieve stage took 2.2 ms longer than with no check at all."""
        give_up = time.monotonic() + LULL_MAX_SECONDS
        while (now := time.monotonic()) < give_up and (quiet := now - self._last_search) < LULL_SECONDS:
            time.sleep(LULL_SECONDS - quiet)

    def _load_index(self, brand: str, cached: BrandIndex | None) -> BrandIndex:
        now = time.monotonic()
        col = self._fetch(brand)  # not the cached handle: the version lives in fresh metadata
        version = (col.metadata or {}).get("tactful_version", "")
        if cached and cached.version == version:
            cached.checked = now
            return cached
        count = col.count()
        with_vectors = count <= self.settings.knowledge_exact_max_chunks
        include = ["metadatas", "documents", "embeddings"] if with_vectors else ["metadatas", "documents"]
        got: dict[str, list] = {"ids": [], "metadatas": [], "documents": [], "embeddings": []}
        for offset in range(0, count, MIRROR_PAGE):  # pages: one get of 100k rows exceeds SQLite's variable limit
            page = col.get(include=include, limit=MIRROR_PAGE, offset=offset)
            for key in got:
                if page.get(key) is not None:
                    got[key].extend(page[key])
        index = mirror.build(version, now, got, with_vectors)
        self._indexes[brand] = index
        return index

    def texts(self, brand: str, ids: list[str]) -> list[str]:
        """"Title: text" of these documents, in order (ids the brand no longer has are skipped)."""
        index = self._index(brand)
        return [f"{index.meta[i]['title']}: {index.text.get(i, '')}" for i in ids if i in index.meta]

    def still_current(self, brand: str, hit: Hit) -> bool:
        """A chunk `search_chunks` found earlier is still part of its document, under the same title."""
        index = self._index(brand)
        meta = index.meta.get(hit.id)
        return meta is not None and meta["title"] == hit.title and hit.text in index.text.get(hit.id, "")

    def in_memory(self, brand: str) -> bool:
        """True when a search for `brand` needs no I/O: its mirror is loaded and holds the vectors."""
        index = self._indexes.get(brand)
        return bool(index and index.vectors is not None)

    def _cosine_by_doc(self, brand: str, index: BrandIndex, text: str, k: int, kinds: list[str] | None,
                       language: str | None, vector: np.ndarray | None) -> np.ndarray:
        """Per document (in `index.order`): the best cosine of its chunks; -inf for documents
        the kinds/language filter excludes."""
        best = np.full(len(index.order), -np.inf, dtype=np.float32)
        if index.vectors is None:  # large brand: Chroma's ANN index does the work
            # No `where` filter: Chroma applies one by scanning metadata in SQLite (430 ms at 100k
            # chunks, measured); over-fetch from the index and filter on the mirror instead.
            for hit in self.search_chunks(brand, text, max(k * 20, 100), None, None, vector):
                i = index.position.get(hit.id)
                meta = index.meta.get(hit.id, {})
                if i is None or (kinds and meta.get("kind") not in kinds) or (language and meta.get("language") != language):
                    continue
                best[i] = max(best[i], hit.score)
            return best
        return mirror.best_per_document(index, self._vector(text, vector), kinds, language)

    def _vector(self, text: str, vector: np.ndarray | None) -> np.ndarray:
        return vector if vector is not None else self.embed.embed_texts([text])[0]

    def search(self, brand: str, text: str, k: int = 3, kinds: list[str] | None = None, language: str | None = None,
               min_score: float | None = None, vector: np.ndarray | None = None) -> list[Hit]:
        """Documents (not chunks) best first, by hybrid score; each document once, with its full text.
        `vector` is the text's embedding when the caller already has it."""
        if not brand_ok(brand):
            raise UnknownBrand(brand)
        try:
            index = self._index(brand)
        except (UnknownBrand, StoreUnavailable):
            raise
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc
        if not index.order:
            return []
        cosine = self._cosine_by_doc(brand, index, text, k, kinds, language, vector)
        score = VECTOR_WEIGHT * cosine  # -inf stays -inf: filtered-out documents never rank
        if index.lexical is not None:
            lexical = index.lexical.scores(lexical_tokens(text))
            top = float(lexical.max())
            if top > 0:
                score = score + (1 - VECTOR_WEIGHT) * (lexical / top)
        candidates = np.flatnonzero(np.isfinite(score))
        if min_score is not None:
            candidates = candidates[score[candidates] >= min_score - 5e-5]  # scores are reported rounded to 4 places
        if len(candidates) > k:
            candidates = candidates[np.argpartition(-score[candidates], k)[:k]]
        candidates = candidates[np.argsort(-score[candidates], kind="stable")]
        return [_document_hit(index, index.order[i], round(float(score[i]), 4)) for i in candidates.tolist()]

    def document_hit(self, brand: str, doc_id: str, score: float) -> Hit | None:
        """Document `doc_id` as `search` returns it, with `score`, as the brand's knowledge says it now."""
        index = self._index(brand)
        return _document_hit(index, doc_id, score) if doc_id in index.meta else None


def _document_hit(index: BrandIndex, doc_id: str, score: float) -> Hit:
    m = index.meta[doc_id]
    return Hit(id=doc_id, kind=m["kind"], title=m["title"], language=m["language"], score=score,
               text=index.text.get(doc_id, ""), url=m.get("url") or None, next_step=m.get("next_step") or None)
