"""The lexical side of the pgvector store: BM25 and coverage over PostgreSQL full-text search.

A chunk's terms are made by PostgreSQL's full-text search in the chunk's language: its
`french` or `english` text search configuration (parser, stop words, Snowball stemmer) reads
the chunk's words, and `rag_terms` folds the resulting lexemes' accents (PostgreSQL's
`unaccent` is not always installed), so "élèves" and "eleves" are one term. Before that,
the stop words and elisions `rag.analysis` knows are dropped (PostgreSQL's lists miss some,
like "les" or "quel"), so a term means here what it means in the local store. The terms
are kept in a `tsvector` under a GIN index; a question's are made the same way, in the
question's language, and OR-ed in a `tsquery`. The matching chunks are ranked by BM25 (k1
1.2, b 0.75, as SQLite's FTS5), from each term's frequency in the chunk and its idf over
the chunks the reader sees; the score of a hit is its coverage, the share of the
question's term weight (idf) it holds, as in the local store.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rag.analysis import Language, content_words, detect_language
from rag.store.base import Filters
from rag.store.pgvector.sql import file_filter, visible

if TYPE_CHECKING:
    import psycopg

# The text search configuration of each language, and the SQL that makes a text's terms.
CONFIGURATIONS: dict[Language, str] = {"en": "english", "fr": "french"}
TERMS = "rag_terms(%s::regconfig, %s)"
TERM_COUNT = "(SELECT coalesce(sum(cardinality(u.positions)), 0) FROM unnest(t.v) u)"  # of tsvector t.v
# Installed by the database's migration 2: lexemes with their accents folded (as
# `rag.analysis.fold` does), positions kept (their number is a term's frequency).
TERMS_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION rag_fold(t text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT translate(replace(replace(lower(t), 'œ', 'oe'), 'æ', 'ae'),
    'àáâãäåçèéêëìíîïñòóôõöùúûüýÿ', 'aaaaaaceeeeiiiinooooouuuuyy') $$;
CREATE OR REPLACE FUNCTION rag_terms(config regconfig, t text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT coalesce(string_agg('''' || replace(replace(rag_fold(u.lexeme), '\', '\\'),
    '''', '''''') || ''':' || array_to_string(u.positions, ','), ' ')::tsvector, ''::tsvector)
    FROM unnest(to_tsvector(config, t)) u $$;
"""


def terms_input(text: str, language: Language) -> tuple[str, str]:
    """The arguments of TERMS for a text in a language: its configuration, and its words
    without the stop words and elisions `rag.analysis` drops."""
    return CONFIGURATIONS[language], " ".join(content_words(text, language))


BM25_K1, BM25_B = 1.2, 0.75  # FTS5's defaults, as in the local store
COMMON_TERM_SHARE, COMMON_TERM_MIN_CHUNKS = 0.25, 2000  # as in the local store
# In a large index, candidates are the chunks holding one of the question's rarer terms (in
# at most this share of the chunks): scoring every chunk a frequent term matches would
# read a large part of the table, and such chunks rarely rank high on that term alone.
# Their BM25 still counts every term below COMMON_TERM_SHARE.
CANDIDATE_TERM_SHARE = 0.05


def _tsquery(lexemes: Sequence[str]) -> str:
    """lexemes OR-ed, quoted for PostgreSQL's tsquery input (no further analysis)."""
    return " | ".join("'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in lexemes)


def _idf(total: int, frequency: int) -> float:
    return math.log(1 + (total - frequency + 0.5) / (frequency + 0.5))


class PgLexical:
    """BM25 over one index's chunk terms; keeps the reader's term statistics per commit."""

    def __init__(self, sql: Callable[[str], bytes], schema: str) -> None:
        self.sql = sql
        self.schema = schema
        self._stats: tuple[int | None, int, float] | None = None  # (view, chunks, mean length)

    def search(
        self,
        conn: psycopg.Connection[tuple[Any, ...]],
        view: int | None,
        query: str,
        k: int,
        filters: Filters | None = None,
    ) -> list[tuple[int, float, float]]:
        """The k best (chunk id, BM25, coverage) of the view, best first."""
        row = conn.execute(
            f"SELECT tsvector_to_array({TERMS})", terms_input(query, detect_language(query))
        ).fetchone()
        terms = sorted(row[0]) if row and row[0] else []
        if not terms or k <= 0:
            return []
        where, args = file_filter(filters)
        total, mean_length = self._stats_of(conn, view)
        frequencies = self._frequencies(conn, terms, view)
        weights = {t: _idf(total, frequencies[t]) for t in terms}
        searched = _searched(terms, total, frequencies, COMMON_TERM_SHARE)
        matched = _searched(terms, total, frequencies, CANDIDATE_TERM_SHARE)
        rows = conn.execute(
            self.sql(
                "WITH q AS (SELECT * FROM unnest(%s::text[], %s::float8[]) AS q(lexeme, idf)), "
                "m AS (SELECT c.id, c.length, c.terms FROM {s}.chunks c WHERE c.terms @@ %s::tsquery "
                f"AND {visible('c', view)}{where}) "
                "SELECT m.id, sum(q.idf * u.tf * %s / (u.tf + %s * (1 - %s + %s * m.length / %s))) "
                "AS bm25 FROM m CROSS JOIN LATERAL "
                "(SELECT lexeme, cardinality(positions) AS tf FROM unnest(m.terms)) u "
                "JOIN q ON q.lexeme = u.lexeme GROUP BY m.id ORDER BY bm25 DESC, m.id LIMIT %s"
            ),
            [
                searched,
                [weights[t] for t in searched],
                _tsquery(matched),
                *args,
                BM25_K1 + 1,
                BM25_K1,
                BM25_B,
                BM25_B,
                mean_length,
                k,
            ],
        ).fetchall()
        present = self._present(conn, [int(r[0]) for r in rows], terms)
        whole = sum(weights.values()) or 1.0
        scored = []
        for chunk_id, bm25 in ((int(r[0]), float(r[1])) for r in rows):
            coverage = sum(w for t, w in weights.items() if t in present.get(chunk_id, ())) / whole
            scored.append((chunk_id, bm25, coverage))
        return scored

    def _stats_of(self, conn: psycopg.Connection[tuple[Any, ...]], view: int | None) -> tuple[int, float]:
        """Chunks the view sees and their mean length in terms (once per committed state)."""
        if view is not None and self._stats is not None and self._stats[0] == view:
            return self._stats[1], self._stats[2]
        row = conn.execute(
            self.sql(
                f"SELECT count(*), coalesce(avg(c.length), 1) FROM {{s}}.chunks c WHERE {visible('c', view)}"
            )
        ).fetchone()
        total, mean = (int(row[0]), max(float(row[1]), 1.0)) if row else (0, 1.0)
        self._stats = (view, total, mean) if view is not None else None
        return total, mean

    def _frequencies(
        self, conn: psycopg.Connection[tuple[Any, ...]], terms: list[str], view: int | None
    ) -> dict[str, int]:
        """In how many chunks of the view each term occurs. A common term (one of the
        column's most common elements in PostgreSQL's statistics) is estimated from its
        share of the rows, as counting it would read a large part of the table; the others
        are counted over the GIN index, which is quick for them."""
        common = conn.execute(
            self.sql(
                "SELECT m.e, m.f * greatest((SELECT reltuples FROM pg_class "
                "WHERE oid = '{s}.chunks'::regclass), 0) FROM pg_stats s, "
                "unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS m(e, f) "
                "WHERE s.schemaname = %s AND s.tablename = 'chunks' AND s.attname = 'terms' "
                "AND m.e = ANY(%s)"
            ),
            (self.schema, terms),
        ).fetchall()
        found = {str(r[0]): int(r[1]) for r in common}
        rare = [t for t in terms if t not in found]
        rows = (
            conn.execute(
                self.sql(
                    f"SELECT t, (SELECT count(*) FROM {{s}}.chunks c WHERE c.terms @@ q::tsquery "
                    f"AND {visible('c', view)}) FROM unnest(%s::text[], %s::text[]) AS w(t, q)"
                ),
                (rare, [_tsquery([t]) for t in rare]),
            ).fetchall()
            if rare
            else []
        )
        return {**found, **{str(r[0]): int(r[1]) for r in rows}}

    def _present(
        self, conn: psycopg.Connection[tuple[Any, ...]], ids: list[int], terms: list[str]
    ) -> dict[int, set[str]]:
        """Which of the query's terms each chunk holds."""
        if not ids:
            return {}
        rows = conn.execute(
            self.sql(
                "SELECT c.id, array_agg(u.lexeme) FROM {s}.chunks c CROSS JOIN LATERAL unnest(c.terms) u "
                "WHERE c.id = ANY(%s) AND u.lexeme = ANY(%s) GROUP BY c.id"
            ),
            (ids, terms),
        ).fetchall()
        return {int(r[0]): set(r[1]) for r in rows}


def _searched(terms: list[str], total: int, frequencies: dict[str, int], share: float) -> list[str]:
    """All terms but those in more than `share` of the chunks of a large index (the two
    rarest always kept)."""
    unique = sorted(terms, key=lambda t: (frequencies.get(t, 0), t))
    if total < COMMON_TERM_MIN_CHUNKS:
        return unique
    kept = [t for t in unique if frequencies.get(t, 0) <= share * total]
    return kept if len(kept) >= 2 else unique[:2]


def reanalyze(conn: psycopg.Connection[tuple[Any, ...]], schema: str, chunk_context: bool) -> int:
    """Make every chunk's terms again, as they are made now (an index's migration 2: its
    terms were once made by `rag.analysis` and read by the `simple` configuration). Rows
    are read and written a batch at a time, in the caller's transaction; the count."""
    from rag.types import Chunk

    done, last = 0, 0
    while True:
        rows = conn.execute(
            f"SELECT c.id, c.text, CASE f.name WHEN '' THEN f.path ELSE f.name END, c.heading, c.lang "
            f"FROM {schema}.chunks c JOIN {schema}.files f ON f.id = c.file_id WHERE c.id > %s "
            "ORDER BY c.id LIMIT 1000",
            (last,),
        ).fetchall()
        if not rows:
            return done
        updates = []
        for chunk_id, text, path, heading, lang in rows:
            chunk = Chunk(str(text), str(path), heading=str(heading))
            language: Language = "fr" if lang == "fr" else "en"
            updates.append((*terms_input(chunk.context if chunk_context else chunk.text, language), chunk_id))
        with conn.cursor() as cur:
            cur.executemany(
                f"UPDATE {schema}.chunks c SET terms = t.v, length = {TERM_COUNT} "
                f"FROM (SELECT {TERMS} AS v) t WHERE c.id = %s",
                updates,
            )
        done, last = done + len(rows), int(rows[-1][0])
