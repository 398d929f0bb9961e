"""A browser's worth of HTML form handling for clients that drive the pages over plain HTTP: the forms of a
page with their inputs and submit buttons, and the data a browser would submit for one."""
from __future__ import annotations

import html.parser


class _Forms(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms, self._cur = [], None

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._cur = {"action": a.get("action", ""), "method": a.get("method", "get").lower(),
                         "inputs": [], "buttons": []}
            self.forms.append(self._cur)
        elif self._cur is not None and tag == "input":
            t = a.get("type", "text").lower()
            (self._cur["buttons"] if t == "submit" else self._cur["inputs"]).append({**a, "type": t})
        elif self._cur is not None and tag == "button" and a.get("type", "submit").lower() == "submit":
            self._cur["buttons"].append(a)

    def handle_endtag(self, tag):
        if tag == "form":
            self._cur = None


def forms(text: str) -> list[dict]:
    """The page's forms: ``{"action", "method", "inputs": [attrs...], "buttons": [attrs...]}`` each."""
    p = _Forms()
    p.feed(text)
    return p.forms


def form_data(form: dict, **values) -> dict:
    """What a browser submits for ``form`` (hidden and text values, checked boxes), with ``values`` set."""
    data = {i["name"]: i.get("value", "") for i in form["inputs"]
            if i.get("name") and i["type"] not in ("checkbox", "radio")}
    for i in form["inputs"]:
        if i.get("name") and i["type"] in ("checkbox", "radio") and "checked" in i:
            data.setdefault(i["name"], i.get("value", "on"))
    data.update(values)
    return data
