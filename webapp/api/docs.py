"""/api/docs: the API documentation for people, rendered on the server from
the same OpenAPI document the API serves (no CDN, no JavaScript)."""

from flask import Blueprint, render_template

from ..i18n import _
from .docs_prose import PROSE
from .openapi import document

bp = Blueprint("api_docs", __name__)

METHODS = ("get", "post", "put", "delete")


def _ref_name(schema):
    ref = (schema or {}).get("$ref", "")
    return ref.rsplit("/", 1)[-1] if ref else None


def type_label(schema):
    """A short type for a schema: 'string (date-time)', 'Segment', 'array of Customer', 'string | null'."""
    if not schema:
        return "any"
    name = _ref_name(schema)
    if name:
        return name
    if "oneOf" in schema:
        label = " | ".join(type_label(s) for s in schema["oneOf"])
    elif schema.get("type") == "array":
        label = "array of " + type_label(schema.get("items"))
    else:
        label = schema.get("type", "any")
        if schema.get("format"):
            label += f" ({schema['format']})"
        if schema.get("enum"):
            label += ": " + ", ".join(str(v) for v in schema["enum"])
    if schema.get("nullable"):
        label += " | null"
    return label


def operations(doc):
    """[(tag, [operation dict])] in document order, with path-level parameters merged in."""
    groups = {tag["name"]: [] for tag in doc.get("tags", [])}
    for path, item in doc["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if not op:
                continue
            params = list(item.get("parameters", [])) + list(op.get("parameters", []))
            body = (op.get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema")
            responses = []
            for status, response in op["responses"].items():
                name = _ref_name(response)
                if name:
                    response = doc["components"]["responses"][name]
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                responses.append(
                    {
                        "status": status,
                        "description": response.get("description", ""),
                        "schema": type_label(schema) if schema else None,
                    }
                )
            groups.setdefault((op.get("tags") or ["Other"])[0], []).append(
                {
                    "method": method.upper(),
                    "path": path,
                    "id": op.get("operationId"),
                    "summary": op.get("summary"),
                    "description": op.get("description"),
                    "parameters": params,
                    "body": _ref_name(body) if body else None,
                    "responses": responses,
                }
            )
    return list(groups.items())


def translated(node):
    """A copy of (part of) the OpenAPI document with its prose in the reader's language
    (summaries, descriptions, tag names); codes, names of fields and schemas stay."""
    if isinstance(node, list):
        return [translated(item) for item in node]
    if not isinstance(node, dict):
        return node
    copy = {}
    for key, value in node.items():
        if key in ("description", "summary") and value in PROSE:
            copy[key] = _(value)
        elif key == "tags" and isinstance(value, list):
            copy[key] = [
                dict(tag, name=_(tag["name"])) if isinstance(tag, dict) else _(tag) if tag in PROSE else tag
                for tag in value
            ]
        else:
            copy[key] = translated(value)
    return copy


@bp.route("/api/docs")
def docs():
    doc = translated(document())
    return render_template(
        "api/docs.html", doc=doc, groups=operations(doc), schemas=doc["components"]["schemas"], type_label=type_label
    )
