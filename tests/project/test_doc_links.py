"""Every in-page link of the protocol document and the README leads to one of its headings, as
GitHub names them: a reader who clicks a reference lands where it says."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def github_anchor(heading):
    """The id GitHub gives a heading: lower case, without punctuation but `-` and `_`, spaces
    as dashes (each kept, so " — " becomes "--")."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("document", ["docs/protocol.md", "README.md"])
def test_every_anchor_link_names_a_heading(document):
    text = (ROOT / document).read_text()
    without_code = re.sub(r"```.*?```", "", text, flags=re.S)
    headings = {
        github_anchor(line.lstrip("#"))
        for line in without_code.splitlines()
        if re.match(r"#{1,6} ", line)
    }
    links = set(re.findall(r"\]\(#([^)]+)\)", without_code))
    assert links, document
    assert sorted(links - headings) == []
