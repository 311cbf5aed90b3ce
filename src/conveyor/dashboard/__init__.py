"""The web dashboard: ``create_app(app)`` gives a mountable Starlette app (``pip install
'conveyor[dashboard]'``); ``conveyor dashboard MODULE:APP`` serves it with uvicorn."""

from conveyor.dashboard.app import create_app
from conveyor.dashboard.security import AuthHook, BasicAuth, is_loopback

__all__ = ["AuthHook", "BasicAuth", "create_app", "is_loopback"]
