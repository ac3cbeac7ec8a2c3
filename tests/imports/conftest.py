"""Helpers for the import tests: the fixture corpus, and running an import
synchronously through the real engine on the test database."""

import csv
import io
import shutil
from pathlib import Path

import pytest

from webapp.imports.service import Importer
from webapp.models import ImportRun

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def imports_dir(tmp_path):
    path = tmp_path / "imports"
    path.mkdir()
    return path


@pytest.fixture
def fixture_file(imports_dir):
    """A copy of a corpus file in the imports folder (as an upload would be)."""

    def copy(name):
        target = imports_dir / Path(name).name
        shutil.copyfile(FIXTURES / name, target)
        return target

    return copy


@pytest.fixture
def write_file(imports_dir):
    counter = iter(range(10**6))

    def write(text, encoding="utf-8", name=None):
        path = imports_dir / (name or f"file-{next(counter)}.csv")
        data = text if isinstance(text, bytes) else text.encode(encoding)
        path.write_bytes(data)
        return path

    return write


@pytest.fixture
def run_import(db, imports_dir):
    """Import `path` as `kind` through the engine, synchronously; returns the finished ImportRun."""

    def run(kind, path, mapping=None, batch_size=None, tz=None, **options):
        record = ImportRun.create(
            kind=kind,
            file_name=Path(path).name,
            file_path=str(path),
            status="queued",
            mapping=mapping,
            options=options or None,
        )
        engine = Importer(record, imports_dir, tz=tz, **({"batch_size": batch_size} if batch_size else {}))
        engine.execute()
        return ImportRun.get_by_id(record.id)

    return run


def read_rejected(run):
    """The rejected-rows CSV of a run as (header, rows)."""
    text = Path(run.rejected_path).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=run.delimiter or ","))
    return rows[0], rows[1:]
