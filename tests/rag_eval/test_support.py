"""The strict check citation precision is judged by: the passage's own words must hold the
sentence's, and its numbers and commands exactly."""

from __future__ import annotations

from rag.analysis import claim_tokens
from rag_eval.support import supports

PASSAGE = (
    "To find the package a file belongs to, run dpkg --search /usr/bin/vi. "
    "La commande lsb_release -a affiche la version, par exemple 11."
)


def test_tokens_keep_commands_options_and_paths() -> None:
    assert claim_tokens("Run `dpkg --search` on /etc/apt/sources.list, l'option -a [2].") == [
        "run",
        "dpkg",
        "--search",
        "on",
        "/etc/apt/sources.list",
        "option",
        "-a",
    ]


def test_a_copied_or_lightly_cut_sentence_is_supported() -> None:
    assert supports(PASSAGE, "Run dpkg --search /usr/bin/vi to find the package [1].")
    assert supports(PASSAGE, "La commande lsb_release -a affiche la version [2].")


def test_a_wrong_option_number_or_claim_is_not() -> None:
    assert not supports(PASSAGE, "Run dpkg --find /usr/bin/vi to find the package.")
    assert not supports(PASSAGE, "La commande lsb_release -a affiche la version 12.")
    assert not supports(PASSAGE, "Debian is the best operating system for everyone.")
    assert not supports(PASSAGE, "[1]")
