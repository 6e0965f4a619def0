"""`rag eval`: retrieval and answer quality on a question set, through the full pipeline."""
