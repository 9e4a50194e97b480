"""``dutybot watch …`` and ``dutybot sites column …`` on the loopback fixture websites:
planted faults of every kind found, the pages that must not raise an alarm left alone,
the second run compared with the baseline the first one kept."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from bot.cli import main
from core.clock import SHANGHAI
from tests.core.fake_net import make_certs
from tests.watch.conftest import SiteServer

KINDS = {"unreachable", "slow", "cert_expiry", "stale_column", "empty_column", "broken_link", "wrong_term",
         "sensitive_term", "hidden_link", "availability"}
CONFIG = """\
[watch]
down_after = 1
availability_minutes = 1440
slow_ms = 100
polite_delay_ms = 0
timeout_seconds = 3
lexicons = ["terms.txt"]
"""


async def no_dns(host: str, port: int) -> Sequence[str]:
    raise socket.gaierror(socket.EAI_NONAME, "no DNS in tests")


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Run:
    """``dutybot …`` in the test's folder, with a config for quick checks; no name resolves."""
    monkeypatch.setattr("core.fetcher.system_resolver", no_dns)
    (tmp_path / "dutybot.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "terms.txt").write_text("# 本单位词库\n测试敏感词\n", encoding="utf-8")

    def call(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return call


def faulty_site(server: SiteServer, friend: SiteServer) -> None:
    """A homepage with a wrong term, a sensitive term, a broken link, a hidden gambling link,
    a visible link to another site and a correct word holding a wrong one; a fresh column,
    a stale one and an empty one."""
    today = datetime.now(SHANGHAI).date()
    server.set("/", (
        "<html><head><title>区政府门户网站</title></head><body>"
        "<ul class='nav'><li><a href='/gzdt/'>工作动态</a></li><li><a href='/tzgg/'>通知公告</a></li>"
        "<li><a href='/ztzl/'>专题专栏</a></li></ul>"
        "<p>请各单位认真布署冬季防火工作。公布署名文章一篇。</p><p>此处出现测试敏感词。</p>"
        "<a href='/old.html'>旧通知</a>"
        f"<a href='{friend.url('/')}'>友情链接</a>"
        "<div style='display:none'><a href='http://www.lucky-casino.bet/'>娱乐</a></div>"
        "</body></html>"), delay=0.15)
    fresh = today - timedelta(days=2)
    server.set("/gzdt/", f"<html><body><ul class='list'><li><a href='/gzdt/1.html'>全区部署冬季防火工作</a>"
                         f"<span>{fresh.isoformat()}</span></li></ul></body></html>")
    server.set("/gzdt/1.html", "<html><body><h1>全区部署冬季防火工作</h1></body></html>")
    stale = today - timedelta(days=300)
    server.set("/tzgg/", f"<html><body><ul class='list'><li><a href='/tzgg/1.html'>关于做好冬季防火工作的通知</a>"
                         f"<span>{stale.isoformat()}</span></li></ul></body></html>")
    server.set("/tzgg/1.html", "<html><body><h1>通知</h1></body></html>")
    server.set("/ztzl/", "<html><body><nav><a href='/'>首页</a></nav><div class='list'></div></body></html>")
    friend.set("/", "<html><body>友情网站</body></html>")


def test_watch_once_finds_every_planted_fault_and_nothing_else(run: Run, site_server: SiteServer,
                                                               make_site_server: Any, tmp_path: Path) -> None:
    friend = make_site_server()
    down = make_site_server(tls=make_certs(tmp_path, "localhost").server)
    down.set("/", "<html><body>证书网站</body></html>")
    faulty_site(site_server, friend)
    assert run("sites", "add", "区政府门户网站", "--kind", "网站", "--url", site_server.url("/"), "--unit", "区政府办",
               "--intranet")[0] == 0
    assert run("sites", "add", "证书网站", "--kind", "网站", "--url", down.url("/"), "--intranet")[0] == 0
    for name, path, kind in (("工作动态", "/gzdt/", "动态"), ("通知公告", "/tzgg/", "通知公告"),
                             ("专题专栏", "/ztzl/", "其他")):
        assert run("sites", "column", "add", "区政府门户网站", name, "--url", site_server.url(path), "--kind", kind)[0] == 0

    code, out, err = run("watch", "once", "--json")
    assert code == 0, err
    findings = json.loads(out)["findings"]
    assert {f["kind"] for f in findings} == KINDS
    assert all({"kind", "site", "url", "detail"} <= set(f) for f in findings)
    by_kind = {f["kind"]: f for f in findings}
    assert by_kind["wrong_term"]["site"] == "区政府门户网站" and "部署" in by_kind["wrong_term"]["detail"]
    assert [f["url"] for f in findings if f["kind"] == "stale_column"] == [site_server.url("/tzgg/")]
    assert [f["url"] for f in findings if f["kind"] == "empty_column"] == [site_server.url("/ztzl/")]
    assert site_server.url("/old.html") in {f["url"] for f in findings if f["kind"] == "broken_link"}
    assert "lucky-casino.bet" in by_kind["hidden_link"]["detail"]
    assert by_kind["cert_expiry"]["site"] == by_kind["unreachable"]["site"] == "证书网站"
    assert by_kind["unreachable"].get("incident", "").startswith("INC-")
    # no alarm: the fresh column, the correct word 公布署名, the visible link to another site
    assert not [f for f in findings if f["url"].startswith(site_server.url("/gzdt/"))]
    assert not [f for f in findings if friend.url("/") in (f["url"], f["detail"])]
    assert [f["kind"] for f in findings if f["kind"] == "wrong_term"] == ["wrong_term"]
    assert "区政府门户网站" in err and "证书网站" in err                       # progress on stderr

    # the second run compares the homepage with the baseline the first one kept
    page = site_server.reply_for("/").body.decode().replace(
        "</head>", "<script src='http://evil.example.com/x.js'></script></head>")
    site_server.set("/", page)
    code, out, _ = run("watch", "once", "--site", "区政府门户网站", "--json")
    second = json.loads(out)["findings"]
    tampered = [f for f in second if f["kind"] == "tampered"]
    assert len(tampered) == 1 and "evil.example.com" in tampered[0]["detail"]
    assert tampered[0]["incident"].startswith("INC-")
    assert {f["site"] for f in second} == {"区政府门户网站"}

    code, out, _ = run("watch", "status")
    assert code == 0 and "区政府门户网站：本月可用率 100%｜待处理" in out and "证书网站：本月可用率 0%" in out
    assert "页面被篡改" in out
    code, out, _ = run("watch", "accept", "区政府门户网站")
    assert code == 0 and "确认为基线" in out and "已关闭篡改提示 1 项" in out
    code, out, _ = run("watch", "once", "--site", "区政府门户网站")
    assert code == 0 and "页面被篡改" not in out and "[错误表述]" in out


def test_watch_once_without_websites_and_with_an_unknown_one(run: Run) -> None:
    code, out, _ = run("watch", "once", "--json")
    assert (code, json.loads(out)) == (0, {"findings": []})
    code, _, err = run("watch", "once", "--site", "不存在的网站")
    assert code == 2 and "没有在用的网站“不存在的网站”" in err


def test_site_columns_from_the_command_line(run: Run, tmp_path: Path) -> None:
    assert run("sites", "add", "门户网站", "--kind", "网站", "--url", "https://www.example.gov.cn/")[0] == 0
    code, out, _ = run("sites", "column", "add", "门户网站", "通知公告", "--url", "https://www.example.gov.cn/tzgg/",
                       "--kind", "政策文件")
    assert code == 0 and out.strip() == "已登记栏目：门户网站｜通知公告（通知公告·政策文件） https://www.example.gov.cn/tzgg/"
    code, out, _ = run("sites", "column", "add", "门户网站", "通知公告", "--url", "https://www.example.gov.cn/tz/",
                       "--kind", "notices")
    assert code == 0 and out.startswith("已更新栏目：")
    code, _, err = run("sites", "column", "add", "门户网站", "乱写", "--url", "https://www.example.gov.cn/x/",
                       "--kind", "杂项")
    assert code == 2 and "无法识别的栏目类型“杂项”" in err
    code, _, err = run("sites", "column", "add", "门户网站", "坏网址", "--url", "www.example.gov.cn/x/")
    assert code == 2 and "应以 http:// 或 https:// 开头" in err
    code, out, _ = run("sites", "column", "list", "门户网站")
    assert "门户网站｜通知公告（通知公告·政策文件） https://www.example.gov.cn/tz/" in out and "共 1 个栏目" in out
    code, out, _ = run("sites", "column", "remove", "门户网站", "通知公告")
    assert code == 0 and out.startswith("已停用栏目：门户网站｜通知公告")
    code, _, err = run("sites", "column", "remove", "门户网站", "通知公告")
    assert code == 1 and "没有在用的栏目“通知公告”" in err
    code, out, _ = run("sites", "column", "list", "--all")
    assert "（已停用）" in out
    assert run("sites", "add", "区政府发布", "--kind", "微信公众号", "--url", "qzfb")[0] == 0
    code, _, err = run("sites", "column", "add", "区政府发布", "推文", "--url", "https://mp.example.cn/")
    assert code == 2 and "只有网站才能登记栏目" in err
    # a table of columns
    table = tmp_path / "columns.csv"
    table.write_text("网站,栏目,网址,类型\n门户网站,工作动态,https://www.example.gov.cn/gzdt/,动态\n"
                     "门户网站,其他栏目,https://www.example.gov.cn/qt/,\n", encoding="utf-8")
    code, out, _ = run("sites", "column", "import", str(table))
    assert code == 0 and "已导入 2 个栏目（新增 2 个" in out


def test_the_sites_workbook_carries_intranet_and_a_columns_sheet(run: Run, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "网站"
    sheet.append(["名称", "类型", "网址或账号", "单位", "内网"])
    sheet.append(["门户网站", "网站", "https://www.example.gov.cn/", "区政府办", "否"])
    sheet.append(["办公网", "网站", "http://10.20.0.5/", "区政府办", "是"])
    columns = book.create_sheet("栏目")
    columns.append(["网站", "栏目", "网址", "类型"])
    columns.append(["门户网站", "通知公告", "https://www.example.gov.cn/tzgg/", "通知公告"])
    columns.append(["办公网", "内部通知", "http://10.20.0.5/tz/", "其他"])
    book.active = 1                      # saved with the columns sheet open
    path = tmp_path / "sites.xlsx"
    book.save(path)
    code, out, err = run("sites", "import", str(path))
    assert code == 0, err
    assert "已导入 2 个网站和账号（新增 2 个，更新 0 个），栏目 2 个" in out
    code, out, _ = run("sites", "list")
    assert "办公网（网站） http://10.20.0.5/（内网）｜区政府办" in out and "https://www.example.gov.cn/｜区政府办" in out
    code, out, _ = run("sites", "column", "list")
    assert "办公网｜内部通知（其他） http://10.20.0.5/tz/" in out
    # a bad columns row stores nothing, sites included
    bad = Workbook()
    first = bad.active
    assert first is not None
    first.append(["名称", "类型", "网址或账号", "单位", "内网"])
    first.append(["新网站", "网站", "https://new.example.gov.cn/", "", "也许"])
    bad.save(tmp_path / "bad.xlsx")
    code, _, err = run("sites", "import", str(tmp_path / "bad.xlsx"))
    assert code == 2 and "第2行：内网应填“是”或“否”，而不是“也许”" in err
    code, out, _ = run("sites", "add", "办公网", "--kind", "网站", "--url", "http://10.20.0.5/", "--unit", "区政府办",
                       "--no-intranet")
    assert code == 0 and "（内网）" not in out
