"""The page of `cmdm report` in a real browser: headless Chromium opens the file offline,
takes a full-window screenshot, and logs no console message.

Skipped when Chromium is not installed (Debian package `chromium`). Chromium 156 logs every
console message of a page to stderr as `[…:INFO:CONSOLE:<line>] "<message>", source: <url>
(<line>)` (older versions: `CONSOLE(<line>)`), at INFO whatever the level (console.log,
console.error and an uncaught exception look alike). The report has no script, so any console
message at all means something ran or failed: the check fails on every one, and a second test
proves it does with a page that throws.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from dbutil import demo_database
from typer.testing import CliRunner

from cmdm_admin.cli import app
from cmdm_admin.demo import DemoSpec

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)"
)

WIDTH, HEIGHT = 1280, 2400
SPEC = DemoSpec(companies=60, months=14, seed=5, start=date(2024, 6, 1))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CONSOLE = re.compile(r":CONSOLE(?::\d+|\(\d+\))\]\s*(?P<message>.*)$", re.M)


@dataclass(frozen=True)
class Screenshot:
    returncode: int
    png: Path
    console: list[str]  # every console message the page logged
    stderr: str


def console_messages(stderr: str) -> list[str]:
    """The console messages in Chromium's --enable-logging=stderr output."""
    return [m["message"] for m in CONSOLE.finditer(stderr)]


def screenshot(page: Path, workdir: Path) -> Screenshot:
    """Open `page` in headless Chromium, offline, and screenshot the window."""
    png = workdir / "report.png"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={workdir / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=2000",  # let timers fire, so a late error is logged too
        f"--screenshot={png}",
        f"--window-size={WIDTH},{HEIGHT}",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    return Screenshot(done.returncode, png, console_messages(done.stderr), done.stderr)


@dataclass(frozen=True)
class Png:
    width: int
    height: int
    scanlines: list[bytes]  # filtered, as stored


def read_png(data: bytes) -> Png:
    """Just enough of PNG: the IHDR size and the inflated IDAT cut into scanlines."""
    assert data.startswith(PNG_SIGNATURE), "not a PNG"
    chunks: dict[bytes, list[bytes]] = {}
    offset = len(PNG_SIGNATURE)
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        chunks.setdefault(kind, []).append(data[offset + 8 : offset + 8 + length])
        offset += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][0][:10])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    stride = 1 + width * channels * depth // 8  # a filter byte, then the pixels
    pixels = zlib.decompress(b"".join(chunks[b"IDAT"]))
    assert len(pixels) == stride * height, "truncated image data"
    return Png(width, height, [pixels[i : i + stride] for i in range(0, len(pixels), stride)])


def assert_clean_screenshot(shot: Screenshot) -> None:
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert shot.console == [], f"console messages: {shot.console}"
    png = read_png(shot.png.read_bytes())
    assert (png.width, png.height) == (WIDTH, HEIGHT)
    # One colour gives at most a few distinct filtered scanlines (the first row differs
    # under the Up and Paeth filters); a page of text, tables and charts gives hundreds.
    assert len(set(png.scanlines)) > 200
    assert shot.png.stat().st_size > 50_000


@pytest.fixture(scope="module")
def report(admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("report") / "report.html"
    with demo_database(admin_url, SPEC) as url:
        result = CliRunner().invoke(app, ["report", "--out", str(out), "--database-url", url])
        assert result.exit_code == 0, result.output
    yield out


def test_the_report_renders_in_chromium_without_console_messages(
    report: Path, tmp_path: Path
) -> None:
    assert_clean_screenshot(screenshot(report, tmp_path))


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ('throw new Error("boom")', "Uncaught Error: boom"),
        ('setTimeout(function () { console.error("late boom"); }, 500)', "late boom"),
    ],
)
def test_the_console_check_catches_an_error(tmp_path: Path, script: str, message: str) -> None:
    page = tmp_path / "boom.html"
    page.write_text(
        f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><p>boom</p>'
        f"<script>{script}</script></body></html>",
        encoding="utf-8",
    )
    shot = screenshot(page, tmp_path)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert any(message in m for m in shot.console), shot.stderr[-2000:]
    with pytest.raises(AssertionError, match="console messages"):
        assert_clean_screenshot(shot)


def test_console_lines_of_both_chromium_formats_are_read() -> None:
    stderr = (
        "[1:2:1123/111756.525957:INFO:CONSOLE:1] "
        '"a", source: file:///tmp/x.html (1)\n'
        "[1:2:1123/111756.5:ERROR:dbus/bus.cc:405] Failed to connect to the bus\n"
        '[1105/120000.123:INFO:CONSOLE(12)] "b", source: file:///tmp/x.html (12)\n'
    )
    assert console_messages(stderr) == [
        '"a", source: file:///tmp/x.html (1)',
        '"b", source: file:///tmp/x.html (12)',
    ]
