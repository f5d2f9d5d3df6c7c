"""HTML reports that render anywhere: nothing fetched from a CDN, widgets as static snapshots.

nbconvert's HTML export loads require.js, MathJax and the widget manager from CDNs: offline, a
widget output (the control panel) is a blank page and a plotly figure, whose inline plotly.js
registers itself with require.js, does not draw. :func:`offline_notebook` rewrites an executed
notebook before export:

* every plotly output becomes HTML with plotly.js inlined (once per report);
* every widget view becomes a static snapshot of its saved state (texts, buttons, choices,
  images, captured outputs and plotly figure widgets as figures); the widget state is dropped so
  no widget manager is loaded;

and :func:`export_offline` exports it with the CDN script URLs replaced by empty ``data:`` URLs.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PLOTLY = "application/vnd.plotly.v1+json"
EMPTY_URL = "data:,"  # a script URL that loads nothing and asks no server


class _Snapshot:
    """Renders widget models of a saved widget state as static HTML."""

    def __init__(self, state: dict[str, Any], plotly_html):
        self.models = state
        self.plotly_html = plotly_html

    def render(self, model_id: str, depth: int = 0) -> str:
        model = self.models.get(str(model_id).removeprefix("IPY_MODEL_"))
        if model is None or depth > 30:
            return ""
        name, st = model.get("model_name", ""), model.get("state", {})
        if self._hidden(st):  # a hidden widget (a button shown only in some state) stays hidden
            return ""
        if name in ("HTMLModel", "HTMLMathModel"):
            return f"<div>{st.get('value', '')}</div>"
        if name in ("LabelModel", "TextModel", "TextareaModel"):
            return f"<div>{html.escape(str(st.get('value', '') or st.get('description', '')))}</div>"
        if name == "ButtonModel":
            return f"<button disabled>{html.escape(st.get('description', ''))}</button>"
        if "_options_labels" in st:
            return self._choice(st)
        if name == "ImageModel":
            return self._image(model)
        if name == "OutputModel":
            return "".join(self._output(o) for o in st.get("outputs", []))
        if "_widget_data" in st:  # plotly's FigureWidget (an anywidget model)
            return self.plotly_html({"data": st["_widget_data"],
                                     "layout": st.get("_widget_layout", {})})
        children = "".join(self.render(c, depth + 1) for c in st.get("children", []))
        flow = "row" if name == "HBoxModel" else "column"
        return f"<div style='display:flex;flex-direction:{flow};gap:4px'>{children}</div>"

    def _hidden(self, st: dict) -> bool:
        layout = self.models.get(str(st.get("layout", "")).removeprefix("IPY_MODEL_"), {})
        return layout.get("state", {}).get("display") == "none"

    @staticmethod
    def _choice(st: dict) -> str:
        labels = st.get("_options_labels", [])
        index = st.get("index")
        chosen = labels[index] if isinstance(index, int) and 0 <= index < len(labels) else ""
        return (f"<label>{html.escape(st.get('description', ''))} "
                f"<select disabled><option>{html.escape(str(chosen))}</option></select></label>")

    @staticmethod
    def _image(model: dict) -> str:
        st, data = model.get("state", {}), None
        for buf in model.get("buffers", []):
            if buf.get("path") == ["value"]:
                data = buf.get("data")
        if isinstance(st.get("value"), str) and data is None:
            data = st["value"]
        if not data:
            return ""
        fmt = st.get("format", "png")
        return f"<img style='max-width:100%' src='data:image/{fmt};base64,{data}'>"

    def _output(self, out: dict) -> str:
        data = out.get("data", {})
        if out.get("output_type") == "stream":
            return f"<pre>{html.escape(out.get('text', ''))}</pre>"
        if PLOTLY in data:
            return self.plotly_html(data[PLOTLY])
        if WIDGET_VIEW in data:
            return self.render(data[WIDGET_VIEW].get("model_id", ""))
        if "image/png" in data:
            return f"<img style='max-width:100%' src='data:image/png;base64,{data['image/png']}'>"
        if "text/html" in data:
            text = data["text/html"]
            return "".join(text) if isinstance(text, list) else text
        return f"<pre>{html.escape(str(data.get('text/plain', '')))}</pre>"


class _PlotlyInliner:
    """Turns plotly figure dicts into HTML, inlining plotly.js into the first one only."""

    def __init__(self):
        self.included = False

    def __call__(self, figure: dict) -> str:
        import plotly.io as pio

        out = pio.to_html(figure, include_plotlyjs=not self.included, full_html=False,
                          validate=False, config={"displaylogo": False})
        self.included = True
        return out


def offline_notebook(nb) -> Any:
    """Rewrite an executed notebook (nbformat node) in place for an offline HTML export."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    inline = _PlotlyInliner()
    snapshot = _Snapshot(state, inline)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data")
            if not data:
                continue
            if PLOTLY in data:
                out["data"] = {"text/html": inline(data[PLOTLY])}
            elif WIDGET_VIEW in data:
                snap = snapshot.render(data[WIDGET_VIEW].get("model_id", ""))
                out["data"] = {"text/html": snap or "<p><i>(an interactive widget: open this "
                                                    "notebook in the dashboard)</i></p>"}
    nb.metadata.pop("widgets", None)
    return nb


def export_offline(ipynb: Path) -> Path:
    """Write ``<name>.html`` next to an executed notebook, inputs hidden, renderable offline."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, require_js_url=EMPTY_URL,
                            mathjax_url=EMPTY_URL)
    nb = offline_notebook(nbformat.read(ipynb, as_version=4))
    body, _ = exporter.from_notebook_node(nb)
    out = Path(ipynb).with_suffix(".html")
    out.write_text(body, encoding="utf-8")
    return out

