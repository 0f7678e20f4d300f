"""bench/records.py and docs/records/: every record well formed, the table in docs/records.md up to
date with them, and every link to a record in the docs pointing at a file that exists."""

from __future__ import annotations

import re
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import records  # noqa: E402


def test_every_record_is_well_formed_and_the_table_is_up_to_date(capsys):
    assert records.problems(records.load()) == []
    assert records.main(["--check"]) == 0, capsys.readouterr().err


def test_the_table_has_one_row_per_record_file():
    lines = records.TABLE.read_text().splitlines()
    rows = [line for line in lines if line.startswith("| ") and line.endswith(".json) |")]
    assert len(rows) == len(list(records.RECORDS.glob("*.json")))


def test_every_link_to_a_record_in_the_docs_resolves():
    docs = [ROOT / "README.md", ROOT / "bench" / "README.md", *(ROOT / "docs").glob("*.md")]
    for doc in docs:
        for target in re.findall(r"\]\(([^)]*records/[^)]+\.json)\)", doc.read_text()):
            assert (doc.parent / target).resolve().is_file(), f"{doc.name}: {target}"


def test_a_record_without_its_source_is_refused():
    bad = {**records.load()[0], "source": ""}
    assert records.problems([bad]) == [f"{bad['id']}: missing source"]
