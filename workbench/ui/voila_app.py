"""The dashboard's Voila server: Voila with a host guard, a landing page and a working tab close.

``python -m workbench.ui.voila_app <folder> [voila options] --WorkbenchVoila.allowed_hosts=...``
runs :class:`WorkbenchVoila`, Voila's own application with five changes, and why:

* **Host and Origin guard** (:class:`GuardedApplication`): every request whose ``Host`` header,
  or whose ``Origin`` header when it has one, names a host outside the allow-list (127.0.0.1,
  localhost and what ``--allow-host`` added) gets 403 before any handler runs. Voila alone accepts
  any Host, so a DNS-rebinding page could render the panel and drive its websocket.
* **The ``_xsrf`` cookie is set on every page**: the page's unload beacon posts the cookie's
  value to ``/voila/api/shutdown/<kernel>``; without the cookie the server refused the call
  (403 ``'_xsrf' argument missing``) and every closed tab left its kernel running.
* **A handed-out kernel's idle clock starts when it is handed out** (:class:`HandOutKernelManager`):
  Voila protects pooled kernels from the culler, but a preheated kernel taken by a page still
  carries the idle time since it ran the notebook, so a cull check between the hand-out and the
  page's websocket connection shut it down under the page (the page then logged "widget model not
  found" or a 404, and the pool count drifted).
* **plotly.js from the server**: ``/workbench-static/plotly.min.js`` serves the installed
  plotly's bundle (versioned, so browsers cache it); dashboard kernels load it with a script
  tag instead of sending 5 MB of inline script with every page (:func:`plots.setup_notebook`).
* **A landing page** at ``/`` lists the served notebooks with the title and one-line description
  of their ``workbench`` metadata (:func:`landing_entries`), instead of bare file names.
"""
from __future__ import annotations

import html
import ipaddress
import json
import re
from pathlib import Path
from urllib.parse import quote, urlsplit

import tornado.web
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server._tz import utcnow
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.utils import ensure_async
from traitlets import List, Unicode
from voila.app import Voila
from voila.tornado.handler import TornadoVoilaHandler
from voila.tornado.treehandler import TornadoVoilaTreeHandler

from workbench.ui.plots import PLOTLY_JS_ROUTE, plotlyjs_dir

#: host names every dashboard accepts: the address it listens on
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def host_name(netloc: str) -> str:
    """Return the host part of ``host[:port]`` (``[::1]:80`` gives ``::1``), lower-cased."""
    match = re.match(r"^\[?([^\]]*?)\]?(:\d+)?$", netloc.strip().lower())
    return match.group(1) if match else ""


def host_allowed(netloc: str, allowed: frozenset[str]) -> bool:
    """True when the host of ``netloc`` is on the allow-list (any loopback IP counts as local)."""
    name = host_name(netloc)
    if name in allowed:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback and "127.0.0.1" in allowed
    except ValueError:
        return False


class GuardedApplication(tornado.web.Application):
    """A tornado application that answers 403 to requests for a host outside ``allowed_hosts``."""

    allowed_hosts: frozenset[str] = frozenset(LOCAL_HOSTS)

    def find_handler(self, request, **kwargs):
        """Route the request, or to a 403 when its Host or Origin is not allowed."""
        origin = request.headers.get("Origin")
        bad_origin = origin is not None and not host_allowed(urlsplit(origin).netloc,
                                                             self.allowed_hosts)
        if bad_origin or not host_allowed(request.host or "", self.allowed_hosts):
            return self.get_handler_delegate(request, tornado.web.ErrorHandler,
                                             {"status_code": 403})
        return super().find_handler(request, **kwargs)


class _XsrfCookie:
    """Mixin: set the ``_xsrf`` cookie that the page's unload beacon sends back."""

    async def prepare(self, *args, **kwargs):
        await super().prepare(*args, **kwargs)  # identifies the user the token belongs to
        self.xsrf_token  # noqa: B018 -- reading the token sets the cookie


class NotebookPage(_XsrfCookie, TornadoVoilaHandler):
    """Voila's notebook page, with the ``_xsrf`` cookie set."""


def landing_entries(folder: Path) -> list[dict[str, str]]:
    """Return ``{file, title, description}`` per notebook of ``folder``, sorted by file name.

    Title and description come from the notebook's ``metadata.workbench``; without them, the
    first markdown heading is the title and the description is empty.
    """
    entries = []
    for path in sorted(Path(folder).glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        meta = nb.get("metadata", {}).get("workbench", {})
        title = meta.get("title") or _first_heading(nb) or path.stem
        entries.append({"file": path.name, "title": title,
                        "description": meta.get("description", "")})
    return entries


def _first_heading(nb: dict) -> str:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            text = "".join(cell.get("source", ""))
            for line in text.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return ""


LANDING_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Workbench dashboard</title>
<link rel="icon" href="data:;base64,=">
<style>body{{font-family:system-ui,sans-serif;margin:2.5em auto;max-width:60em;color:#222}}
h1{{font-weight:600}} li{{margin:0.9em 0;list-style:none}} a{{font-size:1.15em;color:#0b5cad}}
p{{margin:0.2em 0 0 0;color:#555}} small{{color:#777}}</style></head>
<body><h1>Quant research workbench</h1>
<p>The control panel drives live sessions and backtests; the reports open read-only
(no training and nothing stored when a page loads).</p>
<ul>
{items}
</ul></body></html>
"""


def landing_page(entries: list[dict[str, str]], base_url: str = "/") -> str:
    """Return the landing page's HTML: one link per notebook with its title and description."""
    items = "\n".join(
        f"<li><a class='wb-notebook' href='{base_url}voila/render/{quote(e['file'])}'>"
        f"{html.escape(e['title'])}</a><p>{html.escape(e['description'])}</p></li>"
        for e in entries)
    return LANDING_TEMPLATE.format(items=items)


class LandingPage(JupyterHandler):
    """``/`` and ``/voila/tree``: the list of served notebooks."""

    def initialize(self, entries: list[dict[str, str]]):
        self.entries = entries

    @tornado.web.authenticated
    def get(self, path: str = ""):
        self.xsrf_token  # noqa: B018 -- same cookie as the notebook pages
        self.finish(landing_page(self.entries, self.base_url))


class HandOutKernelManager(AsyncMappingKernelManager):
    """Kernel manager whose culler counts a kernel's idle time from when it left its pool.

    Voila's pooling manager is built on top of this class and keeps its preheated kernels in
    ``_pools`` (per notebook, futures of ``{"kernel_id": ...}``). Each cull round first notes
    which kernels are pooled; a kernel pooled at the last round and gone from the pool now was
    handed out to a page since, and its ``last_activity`` (the end of its preheat run, maybe
    hours ago) is moved to now. A tab that vanished without its unload beacon still has its
    kernel culled about one ``cull_idle_timeout`` after the hand-out.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._pooled_last_round: set[str] = set()

    def _pooled_ids(self) -> set[str]:
        pooled = set()
        for pool in getattr(self, "_pools", {}).values():
            for future in pool:
                if future.done() and not future.cancelled() and future.exception() is None:
                    pooled.add(future.result().get("kernel_id"))
        return pooled

    async def cull_kernels(self):
        pooled = self._pooled_ids()
        for kernel_id in self._pooled_last_round - pooled:
            kernel = self._kernels.get(kernel_id)
            if kernel is not None and hasattr(kernel, "last_activity"):
                kernel.last_activity = max(kernel.last_activity, utcnow())
        self._pooled_last_round = pooled
        return await ensure_async(super().cull_kernels())


class WorkbenchVoila(Voila):
    """Voila serving a folder behind :class:`GuardedApplication`, with the landing page."""

    allowed_hosts = List(Unicode(), config=True,
                         help="Host names accepted besides 127.0.0.1 and localhost.")

    def init_handlers(self) -> list:
        """Voila's handlers, with the landing page and the cookie-setting notebook page."""
        entries = landing_entries(Path(self.root_dir))
        swapped = [(PLOTLY_JS_ROUTE + r"(plotly\.min\.js)", tornado.web.StaticFileHandler,
                    {"path": str(plotlyjs_dir())})]
        for spec in super().init_handlers():
            pattern, handler = spec[0], spec[1]
            if handler is TornadoVoilaTreeHandler:
                swapped.append((pattern, LandingPage, {"entries": entries}))
            elif handler is TornadoVoilaHandler:
                swapped.append((pattern, NotebookPage, *spec[2:]))
            else:
                swapped.append(spec)
        return swapped

    def start(self):
        """Voila's ``start`` with :class:`GuardedApplication` in place of tornado's."""
        import tempfile

        self.connection_dir = tempfile.mkdtemp(prefix="voila_", dir=self.connection_dir_root)
        app = GuardedApplication(**self.init_settings())
        app.allowed_hosts = frozenset(LOCAL_HOSTS) | {h.lower() for h in self.allowed_hosts}
        app.settings.update(self.tornado_settings)
        self.app = app
        self.app.add_handlers(".*$", self.init_handlers())
        self.listen()


main = WorkbenchVoila.launch_instance

if __name__ == "__main__":
    main()
