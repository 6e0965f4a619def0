"""The SQLite file of a local store: its tables, and how a store made by older code is
brought up to date when a writer opens it.

    meta(key, value)            generation (last change), committed (what readers see),
                                index_id, vectors_base, vectors_trained (the IVF file)
    files, chunks               versioned rows (added/removed generations, see
                                `rag.store.local.chunks`); chunks hold their vector
    chunk_terms                 FTS5: each chunk's analyzed terms (`rag.store.local.lexical`)
    chunk_terms_vocab           fts5vocab: in how many chunks each term occurs
"""

from __future__ import annotations

import sqlite3

from rag.analysis import analyze, detect_language

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    ingested_at REAL NOT NULL,
    added INTEGER NOT NULL DEFAULT 0,
    removed INTEGER,
    title TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL DEFAULT '',
    lang TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX IF NOT EXISTS files_live_path ON files(path) WHERE removed IS NULL;
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    page_start INTEGER,
    page_end INTEGER,
    heading TEXT NOT NULL,
    vector BLOB NOT NULL,
    added INTEGER NOT NULL DEFAULT 0,
    removed INTEGER,
    lang TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file_id);
CREATE INDEX IF NOT EXISTS chunks_versions ON chunks(added, removed);
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_terms USING fts5(terms, tokenize='unicode61 remove_diacritics 0');
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_terms_vocab USING fts5vocab(chunk_terms, 'row');
INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0');
INSERT OR IGNORE INTO meta (key, value) VALUES ('committed', '0');
"""

# Format 1 stores had no versions: every row was live and the generation was committed.
_UPGRADE_FROM_1 = """
ALTER TABLE files ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE files ADD COLUMN added INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN removed INTEGER;
ALTER TABLE chunks ADD COLUMN added INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chunks ADD COLUMN removed INTEGER;
"""


def migrate(db: sqlite3.Connection) -> bool:
    """Create the tables, or add what an older store lacks; whether its chunks are still to
    be put in the lexical index (`index_terms`, in a write transaction)."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(chunks)")}
    if columns and "added" not in columns:
        generation = db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        db.executescript("BEGIN;" + _UPGRADE_FROM_1 + "COMMIT;")
        db.execute("INSERT OR REPLACE INTO meta VALUES ('committed', ?)", (generation[0],))
    if columns and "lang" not in columns:
        db.execute("ALTER TABLE chunks ADD COLUMN lang TEXT NOT NULL DEFAULT ''")
    file_columns = {r[1] for r in db.execute("PRAGMA table_info(files)")}
    for column in ("title", "type", "lang"):
        if file_columns and column not in file_columns:
            db.execute(f"ALTER TABLE files ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
    had_terms = db.execute("SELECT 1 FROM sqlite_master WHERE name='chunk_terms'").fetchone() is not None
    db.executescript(SCHEMA)
    return bool(columns) and not had_terms


def index_terms(db: sqlite3.Connection) -> None:
    """Build the lexical index of a store made before it existed."""
    rows = db.execute("SELECT id, text FROM chunks").fetchall()
    for chunk_id, text in rows:  # stores this old were built without headers
        lang = detect_language(text)
        db.execute("UPDATE chunks SET lang=? WHERE id=?", (lang, chunk_id))
        db.execute(
            "INSERT INTO chunk_terms (rowid, terms) VALUES (?, ?)",
            (chunk_id, " ".join(analyze(text, lang))),
        )
