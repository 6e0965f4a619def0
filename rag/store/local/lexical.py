"""The lexical side of the local store: BM25 and coverage over SQLite's FTS5.

Each chunk's terms (`rag.analysis`: stemmed, accent-folded, in the chunk's language) are
kept in the FTS5 table `chunk_terms` under the chunk's id, written and retired with the
chunk's row (`rag.store.local.chunks`). A question's terms are made the same way, in the
question's language, and OR-ed in an FTS5 match ranked by BM25; rows the reader's view
cannot see are left out. The score of a hit is its coverage, the share of the question's
term weight (idf) it holds, as in the pgvector store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rag.analysis import analyze, detect_language
from rag.store.base import Filters
from rag.store.local.chunks import ChunkDB
from rag.store.local.sql import file_filter, visible
from rag.types import Chunk, Hit

COMMON_TERM_SHARE = 0.25  # a term in more chunks than this share is left out of the match
COMMON_TERM_MIN_CHUNKS = 2000  # ... in an index this large (smaller ones are quick anyway)


def query_terms(query: str) -> list[str]:
    """A question's analyzed terms, in its language."""
    return analyze(query, detect_language(query))


def _idf(terms: list[str], total: int, frequencies: dict[str, int]) -> dict[str, float]:
    """BM25's idf of each query term (terms no chunk has weigh as much as the rarest)."""
    return {
        t: math.log(1 + (total - frequencies.get(t, 0) + 0.5) / (frequencies.get(t, 0) + 0.5))
        for t in set(terms)
    }


def _searched_terms(terms: list[str], total: int, frequencies: dict[str, int]) -> list[str]:
    """The terms the BM25 match runs on: all but the very common ones, whose low idf adds
    little to a score while their long posting lists cost most of the time, in a large
    index (the two rarest are always kept). Coverage still counts every term."""
    unique = sorted(set(terms), key=lambda t: frequencies.get(t, 0))
    if total < COMMON_TERM_MIN_CHUNKS:
        return unique
    kept = [t for t in unique if frequencies.get(t, 0) <= COMMON_TERM_SHARE * total]
    return kept if len(kept) >= 2 else unique[:2]


@dataclass
class Matches:
    """What one lexical search read in the store's view: the ranked (chunk id, BM25)
    pairs, their chunks, and the term statistics their coverage is scored from."""

    terms: list[str]
    ranked: list[tuple[int, float]]
    chunks: dict[int, Chunk]
    total: int
    frequencies: dict[str, int]
    present: dict[int, set[str]]

    def hits(self) -> list[Hit]:
        """The hits, best first, scored by coverage (chunks no longer stored left out)."""
        weights = _idf(self.terms, self.total, self.frequencies)
        whole = sum(weights.values()) or 1.0
        hits = []
        for chunk_id, bm25 in self.ranked:
            chunk = self.chunks.get(chunk_id)
            if chunk is None:
                continue
            present = self.present.get(chunk_id, set())
            coverage = sum(w for t, w in weights.items() if t in present) / whole
            hits.append(Hit(chunk_id, chunk, coverage, {"bm25": bm25, "coverage": coverage}))
        return hits


class LocalLexical:
    """BM25 over one SQLite file's chunk terms, in the view of its `ChunkDB`."""

    def __init__(self, rows: ChunkDB) -> None:
        self.rows = rows
        self._terms_total: tuple[tuple[int | None, int], int] | None = None

    def match(self, terms: list[str], k: int, filters: Filters | None) -> Matches:
        """The k best chunks for these analyzed terms (inside the caller's transaction)."""
        total, frequencies = self.term_frequencies(terms)
        ranked = self.search_terms(_searched_terms(terms, total, frequencies), k, filters)
        ids = [i for i, _ in ranked]
        return Matches(terms, ranked, self.rows.chunks(ids), total, frequencies, self.stored_terms(ids))

    def search_terms(
        self, terms: Sequence[str], k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]:
        """The k best (chunk id, BM25 score) of the view for these analyzed terms, among the
        documents `filters` allows."""
        unique = sorted({t for t in terms if t})
        if not unique or k <= 0:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in unique)
        if not filters:
            return self._search_terms_ranked(match, k)
        where, args = file_filter(filters, first=4)
        rows = self.rows.db.execute(
            "SELECT t.rowid, -bm25(chunk_terms) AS score FROM chunk_terms t "
            "JOIN chunks c ON c.id = t.rowid JOIN files f ON f.id = c.file_id "
            f"WHERE chunk_terms MATCH ?2 AND {visible('c')}{where} "
            "ORDER BY score DESC LIMIT ?3",
            (self.rows.view, match, k, *args),
        ).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def _search_terms_ranked(self, match: str, k: int) -> list[tuple[int, float]]:
        """Without filters: FTS5's own top-k by rank (it need not score every match in SQL
        order), then the rows this view cannot see left out; asked again deeper if they
        were too many."""
        db, view = self.rows.db, self.rows.view
        limit = k * 2 + 8
        while True:
            rows = db.execute(
                "SELECT rowid, -rank FROM chunk_terms WHERE chunk_terms MATCH ? ORDER BY rank LIMIT ?",
                (match, limit),
            ).fetchall()
            ids = [int(r[0]) for r in rows]
            marks = ",".join("?" * len(ids))
            visible_ids = (
                {
                    int(r[0])
                    for r in db.execute(
                        f"SELECT id FROM chunks c WHERE id IN ({marks}) AND "
                        f"{visible('c').replace('?1', '?')}",
                        [*ids, view, view, view],
                    )
                }
                if ids
                else set()
            )
            found = [(int(r[0]), float(r[1])) for r in rows if int(r[0]) in visible_ids]
            if len(found) >= k or len(rows) < limit:
                return found[:k]
            limit *= 4

    def stored_terms(self, ids: Sequence[int]) -> dict[int, set[str]]:
        """The analyzed terms the lexical index holds for these chunks."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.rows.db.execute(
            f"SELECT rowid, terms FROM chunk_terms WHERE rowid IN ({marks})", [int(i) for i in ids]
        ).fetchall()
        return {int(r[0]): set(str(r[1]).split()) for r in rows}

    def term_frequencies(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """Chunks in the lexical index, and in how many of them each term occurs."""
        # Counting an FTS5 table reads all of it: counted once per state of the store.
        db, state = self.rows.db, (self.rows.view, self.rows.generation)
        if self._terms_total is None or self._terms_total[0] != state:
            count = int(db.execute("SELECT COUNT(*) FROM chunk_terms").fetchone()[0])
            self._terms_total = (state, count)
        total = self._terms_total[1]
        frequencies = {}
        for term in sorted(set(terms)):  # one look-up per term: fts5vocab serves `term =` fast
            row = db.execute("SELECT doc FROM chunk_terms_vocab WHERE term = ?", (term,))
            found = row.fetchone()
            if found is not None:
                frequencies[term] = int(found[0])
        return total, frequencies
