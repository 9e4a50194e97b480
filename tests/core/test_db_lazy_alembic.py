"""The start's schema check without Alembic (issue 21: cold start): the newest migration read
from the version files' text is Alembic's own head, the stored revision read with SQLAlchemy
is Alembic's, a start on an up-to-date database never imports Alembic, and anything the
text reading is not sure of falls back to Alembic with the same refusals as ever."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core import db
from core.db import check_schema, current_revision, head_revision, make_engine, upgrade
from core.errors import SchemaOutOfDate

ROOT = Path(__file__).resolve().parent.parent.parent


def _alembic_current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_the_shipped_head_read_from_the_files_is_alembics_head() -> None:
    assert db._shipped_head() == head_revision()


def test_the_stored_revision_is_read_as_alembic_reads_it(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert current_revision(eng) is None
    assert _alembic_current(eng) is None
    upgrade(eng, "0001")
    assert current_revision(eng) == _alembic_current(eng) == "0001"
    upgrade(eng)
    assert current_revision(eng) == _alembic_current(eng) == head_revision()
    with eng.begin() as conn:   # two heads stored: Alembic's own refusal, as before
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0001')"))
    with pytest.raises(CommandError):
        current_revision(eng)


def test_an_up_to_date_start_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    eng = make_engine(url)
    upgrade(eng)
    eng.dispose()
    probe = ("import sys\n"
             "from core.db import check_schema, current_revision, make_engine\n"
             f"engine = make_engine({url!r})\n"
             "check_schema(engine)\n"
             "print(current_revision(engine), sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [head_revision(), "[]"]


def test_old_new_and_empty_databases_are_refused_as_before(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(SchemaOutOfDate, match="尚未初始化"):
        check_schema(eng)
    upgrade(eng, "0001")
    with pytest.raises(SchemaOutOfDate, match=f"0001 已过期（最新 {head_revision()}）"):
        check_schema(eng)
    upgrade(eng)
    check_schema(eng)
    with eng.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaOutOfDate, match="9999 比本程序更新"):
        check_schema(eng)


def _versions(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "versions"
    folder.mkdir()
    for name, body in files.items():
        (folder / name).write_text(body, encoding="utf-8")
    return folder


@pytest.mark.parametrize(("files", "head"), [
    ({"a.py": "revision = 'a'\ndown_revision = None\n",
      "b.py": "revision: str = \"b\"\ndown_revision: str | None = 'a'\nbranch_labels = None\ndepends_on = None\n",
      ".#b.py": "not python", "__init__.py": "", "notes.txt": "revision = 'x'\n"}, "b"),
    # Not plainly one line of revisions: Alembic is asked.
    ({"a.py": "revision = 'a'\ndown_revision = None\n", "b.py": "revision = 'b'\ndown_revision = 'a'\n",
      "c.py": "revision = 'c'\ndown_revision = 'a'\n"}, None),                       # two heads
    ({"a.py": "revision = 'a'\ndown_revision = None\n", "b.py": "revision = 'b'\ndown_revision = ('a', 'x')\n"}, None),
    ({"a.py": "revision = 'a'\ndown_revision = None\n", "b.py": "revision = 'b'\ndown_revision = 'z'\n"}, None),
    ({"a.py": "revision = 'a'\ndown_revision = None\n", "b.py": "REV = 'b'\nrevision = REV\ndown_revision = 'a'\n"},
     None),
    ({"a.py": "revision = 'a'\ndown_revision = None\n",
      "b.py": "revision = 'b'\ndown_revision = 'a'\ndepends_on = 'a'\n"}, None),
    ({"a.py": "revision = 'a'\ndown_revision = None\n", "b.py": "revision = 'b'\ndown_revision = 'a'\n",
      "c.py": "revision = 'c'\ndown_revision = 'd'\n", "d.py": "revision = 'd'\ndown_revision = 'c'\n"}, None),
    ({"a.py": "revision = 'a'\ndown_revision = None\n", "a2.py": "revision = 'a'\ndown_revision = None\n"}, None),
])
def test_the_text_reading_gives_up_unless_it_is_sure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     files: dict[str, str], head: str | None) -> None:
    monkeypatch.setattr(db, "VERSIONS_DIR", _versions(tmp_path, files))
    assert db._shipped_head() == head


def test_only_an_exact_match_skips_alembic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database at any other revision than the one the text reading found is checked by
    Alembic as before (here: refused as out of date)."""
    eng = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(eng, "0001")
    monkeypatch.setattr(db, "_shipped_head", lambda: "0002")
    with pytest.raises(SchemaOutOfDate, match="已过期"):
        check_schema(eng)
