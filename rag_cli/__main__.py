"""`python -m rag_cli`: the same as the `rag` command."""

from rag_cli.main import main

main()
