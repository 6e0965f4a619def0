"""Names `vulture` reports as unused that a framework or a library uses (`make lint`)."""

from types import SimpleNamespace

_ = SimpleNamespace()

_.size_bytes  # api/indexes_router.py: a response model's field, read by FastAPI
_.collect  # api/observability.py: a Prometheus collector's method, called by the client
_.change  # ingest/watch.py: the unpacked change kind, not needed beside its path
_.settings_customise_sources  # rag/config/settings.py: pydantic-settings' hook
_.dotenv_settings  # rag/config/settings.py: the hook's signature
_.file_secret_settings  # rag/config/settings.py: the hook's signature
_.inter_op_num_threads  # rag/embedders/onnx.py: onnxruntime's session options
_.intra_op_num_threads  # rag/embedders/onnx.py: onnxruntime's session options
_.forward  # rag/embedders/onnx_export.py: a torch module's forward, called by torch
_.allow_requantize  # rag/generators/gguf_catalog.py: llama.cpp's quantization parameters
_.nthread  # rag/generators/gguf_catalog.py: llama.cpp's quantization parameters
_._requires_eval  # rag/generators/lookup.py: llama-cpp-python's Llama reads it
_.tb  # rag/generators/pool.py: __exit__'s signature
_.is_trained  # rag/store/local/ivf.py: FAISS's index attribute
_.sel  # rag/store/local/vectors.py: FAISS's search parameters
_.format_version  # rag/store/manifest.py: a manifest field, written to and read from JSON
_.isolation_level  # rag/store/pgvector/store.py: psycopg's connection setting
_.read_only  # rag/store/pgvector/store.py: psycopg's connection setting
_.signum  # rag_cli/stopping.py: a signal handler's signature
_.handle_starttag  # bench/data/debian_handbook.py: HTMLParser's callbacks
_.handle_endtag
_.handle_data
_.pytest_configure  # tests/api/conftest.py: pytest's hooks
_.pytest_generate_tests
_.should_exit  # tests/api/conftest.py: uvicorn's server flag
_.ctx  # tests/api/test_fuzz.py: a hook's signature
_._clean_env  # tests/conftest.py: an autouse fixture
_.multilingual_embedder  # tests/rag/test_embedders.py: a fixture requested by name
_.do_POST  # tests/: http.server's handler methods
_.log_message
