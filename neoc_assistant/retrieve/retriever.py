"""Knowledge-base retrieval: query -> ranked, resolved, diverse, scored passages.

Pipeline (each stage timed in ``RetrievalResult.timings_ms``, wall clock, and
``cpu_ms``, this thread's CPU time):

1. **embed** -- the query vector (skipped when the caller passes one: the chain
   reuses the vector its cache lookup already computed).
2. **vector** + **lexical** -- over-fetch ``candidates`` (retrieval settings) chunks from
   Chroma's cosine HNSW index and from the manifest's FTS5 BM25 index (the
   same chunks, kept in step with ingest in one SQLite transaction). User text
   becomes a safe OR-of-quoted-terms MATCH query, rarest terms first within a
   postings budget (``lexical.py``). Filters restrict both lists
   (``filtered_search.py``).
3. **fuse** -- min-max-normalised weighted score fusion (default) or
   reciprocal-rank fusion; weighted won on the SciFact train split.
4. **resolve** -- ids are looked up in the manifest; ids it does not know
   (vectors of a half-written or replaced file) are dropped.
5. **rerank** -- a window of the fused list only. With ``reranker_model_path``,
   a local sentence-transformers ``CrossEncoder`` scores the top
   ``rerank_top_n`` pairs truncated to ``rerank_max_length`` word pieces.
   Without one, the fallback scores the top ``feature_rerank_top_n`` with
   complete features fusion did not have: exact bi-encoder cosine against the
   stored chunk vector (also for chunks only BM25 found), BM25, and the
   IDF-weighted share of query terms the chunk contains (weights chosen on the
   officer-phrased FEMA tune split, checked on SciFact test; see ``settings.py``).
6. **mmr** -- near-duplicates (same ``content_hash``, or cosine >=
   ``near_duplicate_threshold`` to a better-ranked chunk) are dropped, then
   maximal marginal relevance (``mmr_lambda``) picks the final ``k``.
7. **relevance** -- each hit gets ``scores["relevance"]``, a calibrated
   probability that the passage is relevant, comparable across queries (unlike
   the fused/rerank scores, which are relative to one query's candidates).
   ``RetrievalResult.relevant`` holds the hits at or above ``relevance_floor``;
   an empty list means "not in the knowledge base". Calibration:
   ``scripts/calibrate_relevance.py``.

``STAGE_CONFIGS`` (``search.py``) name the stage subsets the evaluation harness compares
(``scripts/eval_retrieval.py``).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Sequence

import numpy as np

from neoc_assistant.lazy import build_once
from neoc_assistant.retrieve.expansion import expansion_terms
from neoc_assistant.retrieve.filtered_search import FilteredVectorSearch
from neoc_assistant.retrieve.hits import Hit
from neoc_assistant.retrieve.lexical import LexicalPlan, TermStatistics, plan_lexical
from neoc_assistant.retrieve.ranking import Candidate, fuse, mmr, normalise
from neoc_assistant.retrieve.reranker import load_cross_encoder
from neoc_assistant.language.devanagari import mostly_devanagari
from neoc_assistant.retrieve.search import (STAGE_CONFIGS, DocumentScope, RetrievalResult, SearchFilters, StageClock,
                                            Stages)
from neoc_assistant.settings import RetrievalSettings
from neoc_assistant.store.embeddings import Embedder
from neoc_assistant.store.identity import check_searchable
from neoc_assistant.store.manifest import Manifest
from neoc_assistant.store.vector_store import VectorStore


class KnowledgeBaseRetriever:
    def __init__(self, settings: RetrievalSettings, manifest: Manifest, vectors: VectorStore, embedder: Embedder,
                 *, device: str = "cpu", reads_nepali: bool = False):
        """``device``: where the optional cross-encoder runs (the embedding model's device);
        ``reads_nepali``: the embedding model understands Nepali (else see ``nepali_bm25_only``)."""
        self.settings = settings
        self.reads_nepali = reads_nepali
        self.device = device
        self.manifest = manifest
        self.vectors = vectors
        self.embedder = embedder
        self._cross_encoder = None
        self._ce_lock = threading.Lock()
        self.term_stats = TermStatistics(manifest)
        self.filtered = FilteredVectorSearch(manifest, vectors)
        self._model_checked: str | None = None  # the kb_version whose recorded model was checked

    # -- public API -----------------------------------------------------------------
    def search(
        self,
        query: str,
        k: int | None = None,
        filters: SearchFilters | None = None,
        query_vector: np.ndarray | None = None,
        *,
        relevant_only: bool = False,
        scope: DocumentScope | None = None,
    ) -> list[Hit]:
        """The best ``k`` passages, best first (``relevant_only``: only those above the floor)."""
        result = self.retrieve(query, k=k, filters=filters, query_vector=query_vector, scope=scope)
        return result.relevant if relevant_only else result.hits

    def search_many(
        self, queries: Sequence[str], k: int | None = None, filters: SearchFilters | None = None
    ) -> list[list[Hit]]:
        """Many queries, embedded in one batch (``search --queries``)."""
        if not queries:
            return []
        encode = getattr(self.embedder, "encode_queries", self.embedder.encode)  # e5: the "query: " side
        vectors = encode(list(queries))
        return [self.search(q, k=k, filters=filters, query_vector=v) for q, v in zip(queries, vectors)]

    def retrieve(
        self,
        query: str,
        k: int | None = None,
        filters: SearchFilters | None = None,
        query_vector: np.ndarray | None = None,
        stages: Stages | None = None,
        scope: DocumentScope | None = None,
    ) -> RetrievalResult:
        """``scope``: documents left out (superseded revisions) or the only ones searched (``versions.py``)."""
        s = self.settings
        k = k or s.top_k
        if stages is None and s.nepali_bm25_only and not self.reads_nepali and mostly_devanagari(query):
            stages = STAGE_CONFIGS["bm25"]  # an English-only model's cosines outvote the words (issue 22)
        stages = stages or Stages()
        timings: dict[str, float] = {}
        cpu: dict[str, float] = {}
        clock = StageClock(timings, cpu)

        if query_vector is None:
            query_vector = self.embedder.embed_query_vector(query)
        query_vector = np.asarray(query_vector, dtype=np.float32)
        clock.lap("embed")

        version = self.manifest.kb_version()
        self.vectors.refresh(version)  # another process may have ingested since
        if version != self._model_checked:  # vectors of another model are refused (store/identity.py)
            model_id = getattr(self.embedder, "model_id", None)
            if model_id:
                check_searchable(self.manifest, model_id)
            self._model_checked = version

        doc_hashes = self.filtered.allowed_documents(filters)
        if scope is not None and scope.only is not None:
            doc_hashes = [h for h in (scope.only if doc_hashes is None else doc_hashes) if h in scope.only]
        excluded = scope.excluded if scope is not None else frozenset()
        clock.lap("filter")
        n_candidates = max(k, s.candidates)

        vector_list: list[tuple[str, float]] = []
        if stages.vector:
            vector_list = self.filtered.search(query_vector, n_candidates, doc_hashes, k)
        clock.lap("vector")

        lexical_list: list[tuple[str, float]] = []
        extra = expansion_terms(query, self.term_stats) if s.query_expansion else []
        plan = plan_lexical(query, self.term_stats, s.lexical_max_terms, s.lexical_max_postings, extra)
        match = plan.match if stages.lexical else None
        if match:
            lexical_list = self.manifest.lexical_search(match, n_candidates, doc_hashes)
        clock.lap("lexical")

        candidates = self._fuse(vector_list, lexical_list, stages)
        # The whole rerank window, plus k spare for near-duplicate removal and MMR.
        pool_size = max(k, self.rerank_window) if stages.rerank else k
        pool_size = min(len(candidates), pool_size + (k if stages.mmr else 0))
        clock.lap("fuse")

        pool = self._resolve_candidates(candidates, pool_size, excluded)
        vecs = self._candidate_vectors(pool)
        clock.lap("resolve")

        reranker = ""
        if stages.rerank and pool:
            pool, reranker = self._rerank(query, query_vector, pool, vecs, plan)
        clock.lap("rerank")

        if stages.mmr and pool:
            pool = self._diversify(pool, vecs, k)
        clock.lap("mmr")

        hits = [cand.hit for cand in pool[:k]]
        self._score_relevance(plan, query_vector, pool[:k], vecs)
        clock.lap("relevance")
        for per_stage in (timings, cpu):
            per_stage["retrieval"] = round(sum(v for key, v in per_stage.items() if key != "embed"), 3)
        return RetrievalResult(
            hits=hits,
            query_vector=query_vector,
            timings_ms=timings,
            cpu_ms=cpu,
            relevance_floor=s.relevance_floor,
            reranker=reranker,
        )

    def config_key(self) -> str:
        """What ``search`` returns depends on the whole retrieval section (and on nothing else
        in the settings but the embedding model): its fingerprint keys the response cache."""
        raw = self.settings.model_dump_json() + str(getattr(self.embedder, "model_id", ""))  # and the vectors
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]

    def is_relevant(self, hit: Hit) -> bool:
        return hit.scores.get("relevance", 0.0) >= self.settings.relevance_floor

    # -- stages -----------------------------------------------------------------------
    def _fuse(
        self, vector_list: list[tuple[str, float]], lexical_list: list[tuple[str, float]], stages: Stages
    ) -> list[Candidate]:
        s = self.settings
        return fuse(vector_list, lexical_list, s.fusion, s.fusion_vector_weight, s.rrf_k)

    def _resolve_candidates(self, candidates: list[Candidate], limit: int,
                            excluded: frozenset[str] = frozenset()) -> list[Candidate]:
        """Attach Hits to the best ``limit`` candidates the manifest knows, not of ``excluded`` documents."""
        out: list[Candidate] = []
        start = 0
        while len(out) < limit and start < len(candidates):
            batch = candidates[start : start + (limit - len(out))]
            start += len(batch)
            resolved = self._resolve_map([(c.chunk_id, c.fused) for c in batch], excluded)
            for cand in batch:
                item = resolved.get(cand.chunk_id)
                if item is None:
                    continue
                cand.hit, cand.content_hash = item
                scores = {"fused": round(cand.fused, 6)}
                if cand.vector is not None:
                    scores["vector"] = round(cand.vector, 6)
                if cand.lexical is not None:
                    scores["lexical"] = round(cand.lexical, 6)
                cand.hit.scores.update(scores)
                out.append(cand)
        return out

    def _candidate_vectors(self, pool: list[Candidate]) -> dict[str, np.ndarray]:
        return self.vectors.vectors([c.chunk_id for c in pool])

    @property
    def rerank_window(self) -> int:
        """Fused candidates the reranker scores: few for a cross-encoder (model cost), more for features."""
        s = self.settings
        return s.rerank_top_n if s.reranker_model_path else s.feature_rerank_top_n

    def _rerank(
        self,
        query: str,
        query_vector: np.ndarray,
        pool: list[Candidate],
        vecs: dict[str, np.ndarray],
        plan: LexicalPlan,
    ) -> tuple[list[Candidate], str]:
        window = self.rerank_window
        head, tail = pool[:window], pool[window:]
        if self.settings.reranker_model_path:
            model = self.cross_encoder
            scores = model.predict(
                [(query, c.hit.text) for c in head], batch_size=max(1, len(head)), show_progress_bar=False
            )
            scores = np.asarray(scores, dtype=np.float64).reshape(len(head), -1)[:, -1]
            kind = "cross-encoder"
        else:
            scores = self._feature_scores(query_vector, head, vecs, plan)
            kind = "features"
        for cand, score in zip(head, scores):
            cand.hit.scores["rerank"] = round(float(score), 6)
        order = np.argsort(-scores, kind="stable")
        head = [head[i] for i in order]
        # Final score: rerank score for the window; whatever is left keeps fused order below it.
        floor = float(scores.min()) if len(head) else 0.0
        for cand in head:
            cand.hit.score = cand.hit.scores["rerank"]
        for i, cand in enumerate(tail, start=1):
            cand.hit.score = floor - i * 1e-6
        return head + tail, kind

    def _feature_scores(
        self, query_vector: np.ndarray, head: list[Candidate], vecs: dict[str, np.ndarray], plan: LexicalPlan
    ) -> np.ndarray:
        """Fallback rerank: complete, cheap features of every candidate, weighted.

        * exact bi-encoder cosine against the stored chunk vector (min-max over the window);
        * BM25 from the lexical list (0 when the chunk was not in it; min-max);
        * coverage: IDF-weighted share of the query's terms in the chunk (absolute, 0..1).
        Weights: ``rerank_*_weight``, chosen on the officer-phrased FEMA tune split (``settings.py``).
        Filling in the exact BM25 of chunks missing from the lexical list was measured too and
        changed nDCG@10 by < 0.002, so it is not done.
        """
        s = self.settings
        cosine = np.array([self._cosine(c, vecs, query_vector) for c in head])
        bm25 = np.array([c.lexical or 0.0 for c in head])
        coverage = np.array(self._coverage(head, plan))
        return (
            s.rerank_cosine_weight * normalise(cosine)
            + s.rerank_bm25_weight * normalise(bm25)
            + s.rerank_coverage_weight * coverage
        )

    @staticmethod
    def _cosine(cand: Candidate, vecs: dict[str, np.ndarray], query_vector: np.ndarray) -> float:
        vec = vecs.get(cand.chunk_id)
        return float(vec @ query_vector) if vec is not None else (cand.vector or 0.0)

    def _coverage(self, cands: list[Candidate], plan: LexicalPlan) -> list[float]:
        """IDF-weighted share of the query's index terms present in each chunk (cached on the candidate)."""
        idf = plan.idf
        idf_total = sum(idf.values())
        todo = [c for c in cands if c.coverage is None]
        if todo:
            terms = self.term_stats.index_terms([c.hit.text for c in todo]) if idf_total > 0 else [set()] * len(todo)
            for cand, chunk_terms in zip(todo, terms):
                cand.coverage = sum(idf[t] for t in chunk_terms if t in idf) / idf_total if idf_total > 0 else 0.0
        return [c.coverage for c in cands]  # type: ignore[misc]  # every one measured above

    def _diversify(self, pool: list[Candidate], vecs: dict[str, np.ndarray], k: int) -> list[Candidate]:
        """Drop near-duplicates of better-ranked chunks, then MMR-select ``k``.

        The same text in two files (a one-page ICS form and the forms booklet that contains it)
        is shown once, but a dropped duplicate's files are added to the kept hit's ``sources``:
        the officer sees both documents say it, and either file counts as found."""
        s = self.settings
        dim = next(iter(vecs.values())).shape[0] if vecs else 1
        matrix = np.stack([vecs.get(c.chunk_id, np.zeros(dim, dtype=np.float32)) for c in pool])
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = matrix / np.where(norms == 0, 1.0, norms)
        sim = matrix @ matrix.T

        kept: list[int] = []
        seen_hashes: dict[str, int] = {}
        for i, cand in enumerate(pool):
            twin = seen_hashes.get(cand.content_hash) if cand.content_hash else None
            if twin is None and kept:
                best = int(np.argmax(sim[i, kept]))
                if float(sim[i, kept[best]]) >= s.near_duplicate_threshold:
                    twin = kept[best]
            if twin is not None:
                pool[twin].hit.add_sources(cand.hit)
                continue
            kept.append(i)
            seen_hashes.setdefault(cand.content_hash, i)

        rel = normalise(np.array([pool[i].hit.score for i in kept]))
        order = mmr(rel, sim[np.ix_(kept, kept)], s.mmr_lambda, k)
        chosen = [pool[kept[j]] for j in order]
        rest = [pool[kept[j]] for j in range(len(kept)) if j not in set(order)]
        return chosen + rest

    def _score_relevance(
        self, plan: LexicalPlan, query_vector: np.ndarray, final: list[Candidate], vecs: dict[str, np.ndarray]
    ) -> None:
        """``scores["relevance"]``: calibrated P(passage is relevant), comparable across queries.

        A logistic model over two absolute (not per-query-normalised) features:
        ``cosine`` -- bi-encoder cosine of query and passage -- and ``coverage`` --
        the IDF-weighted share of the query's content terms that occur in the
        passage (terms as the FTS5 index stems them; IDF over all chunks).
        Coefficients: ``relevance_*`` settings, fitted by scripts/calibrate_relevance.py.
        """
        if not final:
            return
        s = self.settings
        for cand, coverage in zip(final, self._coverage(final, plan)):
            cosine = self._cosine(cand, vecs, query_vector)
            z = s.relevance_bias + s.relevance_cosine_weight * cosine + s.relevance_coverage_weight * coverage
            cand.hit.scores["cosine"] = round(cosine, 6)
            cand.hit.scores["coverage"] = round(coverage, 6)
            cand.hit.scores["relevance"] = round(1.0 / (1.0 + float(np.exp(-z))), 6)

    # -- cross-encoder ---------------------------------------------------------------
    @property
    def cross_encoder(self):
        return build_once(self, "_cross_encoder", self._ce_lock, self._load_cross_encoder)

    def _load_cross_encoder(self):
        return load_cross_encoder(self.settings.reranker_model_path or "", self.device, self.settings.rerank_max_length)

    # -- manifest lookups ----------------------------------------------------------------
    def _resolve_map(self, scored: list[tuple[str, float]],
                     excluded: frozenset[str] = frozenset()) -> dict[str, tuple[Hit, str]]:
        """chunk_id -> (Hit, content_hash) for the ids the manifest knows (not of ``excluded`` documents)."""
        chunks = self.manifest.chunks_by_id(cid for cid, _ in scored)
        sources = self.manifest.sources_of(c.doc_hash for c in chunks.values())
        out: dict[str, tuple[Hit, str]] = {}
        for cid, score in scored:
            chunk = chunks.get(cid)
            names = sources.get(chunk.doc_hash) if chunk is not None else None
            if chunk is None or not names or chunk.doc_hash in excluded:
                continue
            hit = Hit(
                chunk_id=cid,
                score=float(score),
                text=chunk.text,
                source=names[0],
                page=chunk.page,
                section=chunk.section,
                doc_hash=chunk.doc_hash,
                sources=list(names),
                ocr_confidence=chunk.ocr_confidence,
            )
            out[cid] = (hit, chunk.content_hash)
        return out

