"""Web environments: MiniWoB++ tasks and any local website, on Debian's Chromium.

Kept import-free on purpose: `python -m lbi.envs.web.watchdog` imports this package and must
start fast without Playwright or BrowserGym.
"""
