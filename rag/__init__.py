"""Core of the RAG service: settings, embeddings, indexes, retrieval, prompts and generation.

`import rag` stays light: heavy libraries (torch, faiss, llama_cpp) load inside the
implementations that need them.
"""

from rag.config import Settings, load_settings
from rag.errors import RagError

__all__ = ["RagError", "Settings", "load_settings"]
__version__ = "0.1.0"
