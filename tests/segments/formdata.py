"""What a browser would submit from a form in an HTML page (the builder's, in tests).

A small HTML reader: named inputs (text, hidden, number, date, search; checked
checkboxes and radios), selects (the selected option, else the first) and
textareas, in document order, skipping disabled controls and <template> content.
"""

from html.parser import HTMLParser


class _FormReader(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.template = 0
        self.fields = []
        self.select = None
        self.option = None
        self.textarea = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "template":
            self.template += 1
            return
        if self.template:
            return
        name = attrs.get("name")
        if tag == "input" and name and "disabled" not in attrs:
            kind = (attrs.get("type") or "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.fields.append((name, attrs.get("value", "on")))
            elif kind not in ("submit", "button", "image", "reset", "file"):
                self.fields.append((name, attrs.get("value", "")))
        elif tag == "select" and "disabled" not in attrs:
            self.select = {"name": name, "options": [], "selected": None}
        elif tag == "option" and self.select is not None:
            self._close_option()
            self.option = {"value": attrs.get("value"), "text": "", "selected": "selected" in attrs}
        elif tag == "textarea" and name and "disabled" not in attrs:
            self.textarea = {"name": name, "text": ""}

    def _close_option(self):
        if self.option is not None:
            value = self.option["value"] if self.option["value"] is not None else self.option["text"].strip()
            self.select["options"].append(value)
            if self.option["selected"]:
                self.select["selected"] = value
            self.option = None

    def handle_endtag(self, tag):
        if tag == "template":
            self.template -= 1
            return
        if self.template:
            return
        if tag == "option" and self.select is not None:
            self._close_option()
        elif tag == "select" and self.select is not None:
            self._close_option()
            chosen = self.select["selected"]
            if chosen is None and self.select["options"]:
                chosen = self.select["options"][0]
            if self.select["name"] and chosen is not None:
                self.fields.append((self.select["name"], chosen))
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            text = self.textarea["text"]
            self.fields.append((self.textarea["name"], text[1:] if text.startswith("\n") else text))
            self.textarea = None

    def handle_data(self, data):
        if self.option is not None:
            self.option["text"] += data
        if self.textarea is not None:
            self.textarea["text"] += data


def form_fields(html, form_id=None):
    """[(name, value)] a browser would submit from the controls in `html`
    (only those of the form with id `form_id`, when given)."""
    if form_id:
        start = html.index(f'<form id="{form_id}"')
        html = html[start : html.index("</form>", start)]
    reader = _FormReader()
    reader.feed(html)
    reader.close()
    return reader.fields
