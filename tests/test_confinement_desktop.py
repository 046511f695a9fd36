"""Issue 31, finding 7: a desktop episode's display, office suite and network stay its own.

Each attack goes through what the env exposes (`reset`/`step`) or what another local user can
do: a process of another user (uid 65534), or one of ours without the episode's cookie, opens
the episode's X display; LibreOffice runs a macro (one an agent could bind to "open document"
through Tools > Customize, and a document's own auto-run macro); a `=WEBSERVICE()` formula
typed by the agent reaches a server on the host's loopback. One Calc episode serves the first
three tests; the macro test starts a second one on the same env.
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import threading
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

import pytest

from lbi.envs.desktop import apps, odf, starts
from lbi.envs.desktop.env import DesktopEnv
from lbi.types import Task

pytestmark = [
    pytest.mark.desktop,
    pytest.mark.skipif(
        not (shutil.which("Xvfb") and shutil.which("soffice") and shutil.which("xdotool")),
        reason="desktop packages missing: run scripts/system-deps.sh",
    ),
]
OOR = "{http://openoffice.org/2001/registry}"


def _task(start: str) -> Task:
    return Task(env="desktop", instruction="confinement probe", setup={"start": start}, name=start)


@pytest.fixture(scope="module")
def env() -> Iterator[DesktopEnv]:
    e = DesktopEnv()
    try:
        e.reset(_task("calc-blank"), seed=0)
        yield e
    finally:
        e.close()


def _xdotool(display: str, *prefix: str) -> subprocess.CompletedProcess[bytes]:
    bare = {"PATH": os.environ["PATH"], "DISPLAY": display, "HOME": "/nonexistent"}
    return subprocess.run(
        [*prefix, "xdotool", "getmouselocation"],
        env=bare | {"XAUTHORITY": "/nonexistent"},
        capture_output=True,
        timeout=20,
        check=False,
    )


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
def test_no_one_without_the_episode_cookie_opens_the_display(env: DesktopEnv) -> None:
    assert env.session is not None
    display = env.session.env["DISPLAY"]
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    other = _xdotool(display, *nobody)
    assert other.returncode != 0, other.stdout  # another user on the machine
    same_uid = _xdotool(display)
    assert same_uid.returncode != 0, same_uid.stdout  # another episode of ours (other cookie)
    cookie = Path(env.session.env["XAUTHORITY"])
    assert cookie.stat().st_mode & 0o077 == 0 and cookie.stat().st_uid == os.geteuid()
    obs, _, _, _, info = env.step('key("ctrl+Home")')  # the env's own clients still work
    assert not info["error"] and "Window:" in obs
    assert env.screenshot().startswith(b"\x89PNG")


def _registry(xcu: Path) -> dict[tuple[str, str], str]:
    out = {}
    for item in ET.parse(xcu).getroot():
        for prop in item.iter("prop"):
            value = prop.find("value")
            out[(item.get(f"{OOR}path", ""), prop.get(f"{OOR}name", ""))] = (
                "" if value is None else value.text or ""
            )
    return out


def test_the_episode_profile_disables_macros_links_and_expert_settings(env: DesktopEnv) -> None:
    assert env.workdir is not None
    reg = _registry(env.workdir / "profile" / "user" / "registrymodifications.xcu")
    scripting = "/org.openoffice.Office.Common/Security/Scripting"
    assert reg.get((scripting, "DisableMacrosExecution")) == "true"
    assert reg.get((scripting, "MacroSecurityLevel")) == "3"
    assert reg.get((scripting, "BlockUntrustedRefererLinks")) == "true"
    assert reg.get(("/org.openoffice.Office.Common/Security", "EnableExpertConfiguration")) == (
        "false"
    )
    assert reg.get(("/org.openoffice.Office.Calc/Content/Update", "Link")) == "1"  # never
    assert reg.get(("/org.openoffice.Office.Writer/Content/Update", "Link")) == "0"  # never


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        body = b"reached"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_webservice_formula_does_not_reach_the_host(env: DesktopEnv) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/from-calc"
    try:
        env.step('key("ctrl+Home")')
        obs, _, _, _, info = env.step(f'type("=WEBSERVICE(\\"{url}\\")\\n")')
        assert not info["error"]
        deadline = time.monotonic() + 3  # unconfined, the request came within a second
        while not _Counter.hits and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _Counter.hits == [], obs
        # The status bar tells A1's formula found nothing, once Calc has given up on the
        # request (seconds on a loaded machine): the observation is read again until then.
        deadline = time.monotonic() + 30
        obs = env.step('key("ctrl+Home")')[0]
        while "Error: No value" not in obs and time.monotonic() < deadline:
            time.sleep(1)
            obs = env.step('key("ctrl+Home")')[0]
        assert "Error: No value" in obs, obs
        assert _Counter.hits == [], obs
        urllib.request.urlopen(url.replace("from-calc", "from-test"), timeout=5).read()
        assert _Counter.hits == ["/from-test"]  # the server itself was reachable all along
    finally:
        server.shutdown()
        server.server_close()


# -- macros ---------------------------------------------------------------------------------
_BASIC_WRITES = """Sub Main
  Dim n As Integer
  n = FreeFile()
  Open "{path}" For Output As #n
  Print #n, "ran"
  Close #n
End Sub
"""
_LIB = '<library:library xmlns:library="http://openoffice.org/2000/library" '
_MODULE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<script:module '
    'xmlns:script="http://openoffice.org/2000/script" script:name="Module1" '
    'script:language="StarBasic" script:moduleType="normal">{code}</script:module>\n'
)
_EVENTS = (
    '<office:scripts><office:event-listeners><script:event-listener script:language="ooo:script" '
    'script:event-name="dom:load" xlink:type="simple" xlink:href="vnd.sun.star.script:'
    'Standard.Module1.Main?language=Basic&amp;location=document"/></office:event-listeners>'
    "</office:scripts>"
)


def _macro_sheet(path: Path) -> None:
    """A spreadsheet whose own Basic macro runs when it is opened (where macros may run)."""
    odf.write_sheet(path, [["macro"]])
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    content = parts["content.xml"].decode()
    head, sep, rest = content.partition("<office:body")
    for ns in (
        'xmlns:script="urn:oasis:names:tc:opendocument:xmlns:script:1.0"',
        'xmlns:xlink="http://www.w3.org/1999/xlink"',
    ):
        if ns.split("=")[0] not in head:
            head = head.replace("<office:document-content", f"<office:document-content {ns}", 1)
    cut = head.find("<office:automatic-styles")
    head = head[:cut] + _EVENTS + head[cut:] if cut >= 0 else head + _EVENTS
    parts["content.xml"] = (head + sep + rest).encode()
    code = escape(_BASIC_WRITES.format(path=path.parent / "doc-macro-ran"))
    parts["Basic/script-lc.xml"] = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<library:libraries '
        b'xmlns:library="http://openoffice.org/2000/library" '
        b'xmlns:xlink="http://www.w3.org/1999/xlink"><library:library library:name="Standard" '
        b'library:link="false"/></library:libraries>\n'
    )
    parts["Basic/Standard/script-lb.xml"] = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{_LIB}library:name="Standard" '
        'library:readonly="false" library:passwordprotected="false">'
        '<library:element library:name="Module1"/></library:library>\n'
    ).encode()
    parts["Basic/Standard/Module1.xml"] = _MODULE.format(code=code).encode()
    entries = "".join(
        f'<manifest:file-entry manifest:full-path="{n}" manifest:media-type="text/xml"/>'
        for n in (
            "Basic/script-lc.xml",
            "Basic/Standard/script-lb.xml",
            "Basic/Standard/Module1.xml",
        )
    )
    manifest = parts["META-INF/manifest.xml"].decode()
    parts["META-INF/manifest.xml"] = manifest.replace(
        "</manifest:manifest>", entries + "</manifest:manifest>"
    ).encode()
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", parts.pop("mimetype"), compress_type=zipfile.ZIP_STORED)
        for name, data in parts.items():
            z.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)


def _plant_application_macro(workdir: Path) -> None:
    """What an agent could leave behind through the Basic IDE and Tools > Customize > Events:
    a macro in My Macros, bound to every document's opening."""
    basic = workdir / "profile" / "user" / "basic"
    (basic / "Standard").mkdir(parents=True, exist_ok=True)
    (basic / "script.xlc").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<library:libraries '
        'xmlns:library="http://openoffice.org/2000/library" '
        'xmlns:xlink="http://www.w3.org/1999/xlink"><library:library library:name="Standard" '
        'xlink:href="$(USER)/basic/Standard/script.xlb/" xlink:type="simple" '
        'library:link="false"/></library:libraries>\n'
    )
    (basic / "Standard" / "script.xlb").write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n{_LIB}library:name="Standard" '
        'library:readonly="false" library:passwordprotected="false">'
        '<library:element library:name="Module1"/></library:library>\n'
    )
    code = escape(_BASIC_WRITES.format(path=workdir / "app-macro-ran"))
    (basic / "Standard" / "Module1.xba").write_text(_MODULE.format(code=code))
    xcu = workdir / "profile" / "user" / "registrymodifications.xcu"
    binding = (
        '<item oor:path="/org.openoffice.Office.Events/ApplicationEvents/Bindings">'
        '<node oor:name="OnLoad" oor:op="replace"><prop oor:name="BindingURL" oor:op="fuse">'
        "<value>vnd.sun.star.script:Standard.Module1.Main?language=Basic&amp;location=application"
        "</value></prop></node></item>\n"
    )
    xcu.write_text(xcu.read_text().replace("</oor:items>", binding + "</oor:items>"))


def test_macros_do_not_run(env: DesktopEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    launch = apps.launch

    def planted(app: str, file: Path, workdir: Path) -> tuple[list[str], dict[str, str]]:
        out = launch(app, file, workdir)
        _plant_application_macro(workdir)
        return out

    monkeypatch.setattr(apps, "launch", planted)
    monkeypatch.setitem(
        starts.STARTS, "calc-macro", starts.Start("calc", "macro.ods", _macro_sheet)
    )
    env.reset(_task("calc-macro"), seed=0)
    assert env.workdir is not None
    time.sleep(2)  # OnLoad handlers run as the document appears; give them time to finish
    assert not (env.workdir / "app-macro-ran").exists()
    assert not (env.workdir / "doc-macro-ran").exists()
