"""The applications a desktop task can open, and how each is started on the task's file.

LibreOffice gets its own user profile per episode (-env:UserInstallation), copied from a
template made once per machine: a first start of a fresh profile costs seconds and shows a
"tip of the day" dialog; the template has been started once and has the dialog, auto-recovery
and the "keep current format?" question switched off. The settings that confine a document
and the agent (no macros of any kind, no external links or data, no expert configuration to
switch them back) are written into each episode's copy, so a stale template cannot drop them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from lbi.envs.base import EnvError
from lbi.envs.desktop.procs import MARK

_XCU = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
{items}
</oor:items>
"""
_SETTINGS = [
    ("/org.openoffice.Office.Common/Misc", "ShowTipOfTheDay", "false"),
    ("/org.openoffice.Office.Common/Misc", "FirstRun", "false"),
    ("/org.openoffice.Office.Common/Misc", "UseSystemFileDialog", "false"),
    ("/org.openoffice.Office.Common/Save/Document", "WarnAlienFormat", "false"),
    ("/org.openoffice.Office.Common/Save/Document", "AutoSave", "false"),
    ("/org.openoffice.Office.Recovery/AutoSave", "Enabled", "false"),
    ("/org.openoffice.Office.Recovery/RecoveryInfo", "Enabled", "false"),
    ("/org.openoffice.Setup/Product", "ooSetupLastVersion", "7.4"),
    ("/org.openoffice.Office.Calc/Input", "ReplaceCellsWarning", "false"),
    ("/org.openoffice.Office.Calc/Input", "AutoInput", "false"),  # no autocomplete surprises
    ("/org.openoffice.Office.Writer/AutoFunction/Completion", "Enable", "false"),
    ("/org.openoffice.Office.Common/AutoCorrect", "SingleQuoteAtStart", "0"),
]
_SECURITY = "/org.openoffice.Office.Common/Security"
_LOCKED = [
    (f"{_SECURITY}/Scripting", "DisableMacrosExecution", "true"),  # no macro runs, any kind
    (f"{_SECURITY}/Scripting", "MacroSecurityLevel", "3"),  # very high: trusted places only
    (f"{_SECURITY}/Scripting", "BlockUntrustedRefererLinks", "true"),
    (f"{_SECURITY}/Scripting", "ExecutePlugins", "false"),
    (_SECURITY, "EnableExpertConfiguration", "false"),  # Tools > Options > Advanced > Expert
    ("/org.openoffice.Office.Calc/Content/Update", "Link", "1"),  # ScLkUpdMode LM_NEVER
    ("/org.openoffice.Office.Writer/Content/Update", "Link", "0"),  # UpdateLinks NEVER
]
GTK_ENV = {"SAL_USE_VCLPLUGIN": "gtk3", "NO_AT_BRIDGE": "0", "GTK_MODULES": "gail:atk-bridge"}
APPS = {"calc": "LibreOffice Calc", "writer": "LibreOffice Writer", "mousepad": "Mousepad"}


def _item(path: str, name: str, value: str) -> str:
    return (
        f'<item oor:path="{path}"><prop oor:name="{name}" oor:op="fuse">'
        f"<value>{value}</value></prop></item>"
    )


def _xcu() -> str:
    return _XCU.format(items="\n".join(_item(*s) for s in _SETTINGS))


def lock_down(profile: Path) -> None:
    """Write the confining settings into an episode's profile, over any earlier value."""
    xcu = profile / "user" / "registrymodifications.xcu"
    text = xcu.read_text()
    for path, name, _ in _LOCKED:  # an item LibreOffice wrote for the same key goes first
        text = re.sub(
            rf'<item oor:path="{re.escape(path)}"><prop oor:name="{name}"[^>]*>.*?</item>\n?',
            "",
            text,
            flags=re.S,
        )
    ours = "\n".join(_item(*s) for s in _LOCKED)
    if "</oor:items>" not in text:
        raise EnvError(f"unexpected LibreOffice profile: {xcu}")
    xcu.write_text(text.replace("</oor:items>", ours + "\n</oor:items>"))


def soffice() -> str:
    path = shutil.which("soffice")
    if path is None:
        raise EnvError("LibreOffice not found; run scripts/system-deps.sh")
    return path


def profile_template() -> Path:
    """A started-once LibreOffice profile, shared read-only by every episode on this machine."""
    root = Path(tempfile.gettempdir()) / f"lbi-lo-profile-{os.getuid()}-v1"
    if (root / "user" / "registrymodifications.xcu").exists():
        st = root.lstat()  # in a shared /tmp: another user could have planted a profile there
        if root.is_symlink() or st.st_uid != os.getuid() or st.st_mode & 0o022:
            raise EnvError(f"{root} is not this user's own LibreOffice profile: remove it")
        return root
    tmp = Path(tempfile.mkdtemp(prefix="lbi-lo-profile-"))
    (tmp / "user").mkdir()
    (tmp / "user" / "registrymodifications.xcu").write_text(_xcu())
    mark = f"profile-{os.getpid()}"
    env = {**os.environ, MARK: mark, "HOME": str(tmp), "SAL_USE_VCLPLUGIN": "svp"}
    proc = subprocess.Popen(
        [
            soffice(),
            "--headless",
            "--terminate_after_init",
            "--norestore",
            f"-env:UserInstallation={tmp.as_uri()}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        from lbi.envs.desktop.procs import kill_group, sweep

        kill_group([proc])
        sweep(mark)
        raise EnvError("LibreOffice did not finish its first start in 120 s") from None
    with contextlib.suppress(OSError):  # another process may have made it meanwhile
        tmp.rename(root)
    shutil.rmtree(tmp, ignore_errors=True)
    return root


def launch(app: str, file: Path, workdir: Path) -> tuple[list[str], dict[str, str]]:
    """The command line and extra environment that open `file` in `app`."""
    if app in ("calc", "writer"):
        profile = workdir / "profile"
        shutil.copytree(profile_template(), profile)
        lock_down(profile)
        argv = [
            soffice(),
            "--norestore",
            "--nologo",
            "--nolockcheck",
            f"-env:UserInstallation={profile.as_uri()}",
            f"--{app}",
            str(file),
        ]
        return argv, GTK_ENV
    if app == "mousepad":
        exe = shutil.which("mousepad")
        if exe is None:
            raise EnvError("mousepad not found; run scripts/system-deps.sh")
        return [exe, str(file)], {"NO_AT_BRIDGE": "0"}
    raise EnvError(f"unknown desktop application {app!r}; known: {', '.join(APPS)}")
