"""The registry of what is read (DUTY-5): import all or nothing, add, remove, list, /sites."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.cli import main
from bot.config import load_settings
from core.clock import FakeClock, parse_local
from core.tables import read_table
from people.models import Role
from roster.models import Site
from roster.sites import (
    COLUMNS_HINT,
    REQUIRED,
    SiteImportFailed,
    add_site,
    import_sites,
    remove_site,
    validate,
)
from tests.factories import make_person

NOW = parse_local("2026-11-23T09:00")
GOOD = ("名称,类型,网址或账号,单位\n"
        "区政府门户网站,网站,https://www.example.gov.cn,区政府办\n"
        "区政府发布,微信公众号,qzfb_wx,区政府办\n"
        "区政府微博,微博,qzfb,区政府办\n"
        "教育局网站,政府网站,https://edu.example.gov.cn,区教育局\n"
        "全区政务头条,头条号,,\n")


def rows(path: Path) -> list[dict[str, str]]:
    return read_table(path, required=REQUIRED, columns_hint=COLUMNS_HINT)


def stored(engine: Engine) -> list[Site]:
    with Session(engine) as session:
        return list(session.exec(select(Site)))


def test_import_with_bad_rows_stores_nothing(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "sites.csv"
    path.write_text(GOOD + "坏网站,网站,www.no-scheme.gov.cn,区政府办\n"
                    ",微博,abc,区政府办\n"
                    "区政府发布,微信,again,区政府办\n"
                    "某号,快手,ks1,区政府办\n", encoding="utf-8-sig")
    with Session(engine) as session, pytest.raises(SiteImportFailed) as err:
        import_sites(session=session, rows=rows(path), now=NOW, actor="test")
    assert err.value.problems == [
        "第7行：网址“www.no-scheme.gov.cn”应以 http:// 或 https:// 开头",
        "第8行：缺少名称",
        "第9行：“区政府发布”（区政府办）与第3行重复",
        "第10行：无法识别的类型“快手”（可用：网站、微信公众号、微博、抖音、头条号、客户端、其他）",
    ]
    assert stored(engine) == []


def test_import_xlsx_then_reimport_updates(engine: Engine, tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for line in GOOD.strip().split("\n"):
        sheet.append(line.split(","))
    path = tmp_path / "sites.xlsx"
    book.save(path)
    with Session(engine) as session:
        sites, created = import_sites(session=session, rows=rows(path), now=NOW, actor="test")
        session.commit()
    assert (len(sites), created) == (5, 5)
    kinds = {(s.name, s.kind) for s in stored(engine)}
    assert ("教育局网站", "website") in kinds and ("全区政务头条", "toutiao") in kinds
    assert ("区政府微博", "weibo") in kinds and ("区政府发布", "wechat") in kinds
    with Session(engine) as session:
        sites, created = import_sites(session=session, rows=rows(path), now=NOW, actor="test")
        session.commit()
    assert created == 0 and len(stored(engine)) == 5


def test_import_rejects_a_duplicate_name_in_one_unit_but_allows_it_in_another(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "sites.csv"
    path.write_text("名称,类型,网址或账号,单位\n政务发布,微博,a,区政府办\n政务发布,微博,b,区教育局\n", encoding="utf-8")
    with Session(engine) as session:
        _, created = import_sites(session=session, rows=rows(path), now=NOW, actor="test")
        session.commit()
        assert created == 2
        with pytest.raises(Exception, match="多个单位"):
            remove_site(session=session, name="政务发布", unit=None, now=NOW, actor="test")
        remove_site(session=session, name="政务发布", unit="区教育局", now=NOW, actor="test")
        session.commit()
    assert {(s.unit, s.active) for s in stored(engine)} == {("区政府办", True), ("区教育局", False)}


async def test_sites_in_chat_follow_the_unit_and_removal(engine: Engine) -> None:
    clock = FakeClock(NOW)
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=NOW, unit="区政府办")
        for name, kind, url, unit in (("门户网站", "网站", "https://www.example.gov.cn", "区政府办"),
                                      ("区政府发布", "抖音", "dy123", "区政府办"),
                                      ("教育局网站", "网站", "https://edu.example.gov.cn", "区教育局"),
                                      ("全区政务头条", "头条号", "", "")):
            add_site(session=session, new=validate(name, kind, url, unit), now=NOW, actor="test")
        remove_site(session=session, name="区政府发布", unit="区政府办", now=NOW, actor="test")
        session.commit()
    adapter = MemoryAdapter()
    chat = MemoryChat(App(load_settings(None, env={}), clock=clock, adapter=adapter, engine=engine), adapter)
    mine = await chat.send("/sites", as_="王芳")
    assert "区政府办读网的网站和账号（共 2 个）" in mine and "门户网站（网站） https://www.example.gov.cn" in mine
    assert "全区政务头条（头条号）｜各单位" in mine
    assert "教育局网站" not in mine and "区政府发布" not in mine
    everything = await chat.send("站点 all", as_="王芳")
    assert "教育局网站（网站） https://edu.example.gov.cn｜区教育局" in everything
    other = await chat.send("/sites 区卫健局", as_="王芳")   # only the shared account
    assert "（共 1 个）" in other and "全区政务头条" in other


def test_sites_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("sites", "add", "区政府门户网站", "--kind", "网站", "--url", "https://old.example.gov.cn",
                       "--unit", "区政府办")
    assert code == 0 and "已登记：区政府门户网站（网站） https://old.example.gov.cn｜区政府办" in out
    code, _, err = run("sites", "add", "坏网站", "--kind", "网站", "--url", "example")
    assert code == 2 and "应以 http:// 或 https:// 开头" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("名称,类型,网址或账号,单位\n甲,微博,a,\n乙,快手,b,\n", encoding="utf-8")
    code, _, err = run("sites", "import", str(bad))
    assert code == 2 and "第3行：无法识别的类型“快手”" in err and "未导入任何网站或账号" in err
    good = tmp_path / "good.csv"
    good.write_text(GOOD, encoding="utf-8")
    code, out, _ = run("sites", "import", str(good))
    assert code == 0 and "已导入 5 个网站和账号（新增 4 个，更新 1 个）" in out
    code, out, _ = run("sites", "remove", "区政府微博")
    assert code == 0 and "已停用：区政府微博（微博）" in out
    code, out, _ = run("sites", "list")
    assert code == 0 and "区政府微博" not in out and "共 4 个" in out and "https://www.example.gov.cn" in out
    code, out, _ = run("sites", "list", "--all")
    assert "区政府微博（微博） qzfb｜区政府办（已停用）" in out
    code, _, err = run("sites", "remove", "不存在")
    assert code == 1 and "没有找到在用的网站或账号“不存在”" in err
