"""The OpenAPI 3 document of the API, served at /api/v1/openapi.json.

Built here by hand next to the views it describes; tests/api/test_openapi.py
runs schemathesis against it, so every status, shape and type written here
is checked against what the app answers.
"""

import copy

from flask import jsonify

from ..engine.catalogue import ENTITIES
from ..models import (
    CHANNELS,
    CUSTOMER_TYPES,
    GENDERS,
    MESSAGE_KINDS,
    RECIPIENT_STATUSES,
    RUN_STATUSES,
    SEGMENT_TYPES,
    STAGE_KINDS,
)
from .core import DEFAULT_LIMIT, MAX_LIMIT, bp

VERSION = "1.0.0"


def _nullable(schema):
    return dict(schema, nullable=True)


STR = {"type": "string"}
NSTR = _nullable(STR)
TEXT_IN = {"type": "string", "maxLength": 255, "nullable": True}
DT = {"type": "string", "format": "date-time"}
NDT = _nullable(DT)
INT = {"type": "integer"}
NINT = _nullable(INT)
NUM = {"type": "number"}
BOOL = {"type": "boolean"}
ANY = {}
# A cell of the import format: text, number, true/false or null.
CELL = {"nullable": True, "oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties, required=(), additional=False, description=None):
    schema = {"type": "object", "properties": properties, "additionalProperties": additional}
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    return schema


CUSTOM_VALUES = {
    "type": "object",
    "description": "Custom field values by field code (null where unset): "
    "text, number, YYYY-MM-DD date or boolean, by the field's type.",
    "additionalProperties": {"nullable": True, "oneOf": [STR, NUM, BOOL]},
}

CUSTOMER_PROPS = {
    "external_id": STR,
    "type": {"type": "string", "enum": list(CUSTOMER_TYPES)},
    "first_name": NSTR,
    "last_name": NSTR,
    "company_name": NSTR,
    "email": NSTR,
    "phone": NSTR,
    "gender": {"type": "string", "enum": list(GENDERS), "nullable": True},
    "birth_date": {"type": "string", "format": "date", "nullable": True},
    "city": NSTR,
    "country": NSTR,
    "source": NSTR,
    "manager": {"type": "string", "nullable": True, "description": "The manager's user email."},
    "email_consent": BOOL,
    "sms_consent": BOOL,
    "created_at": DT,
    "updated_at": DT,
    "language": {
        "type": "string",
        "nullable": True,
        "description": "The customer's language (en, ru, vi): their unsubscribe page speaks it.",
    },
    "time_zone": {
        "type": "string",
        "nullable": True,
        "description": "An IANA zone (Europe/Moscow); empty: the account's.",
    },
    "tags": {"type": "array", "items": STR},
    "custom": CUSTOM_VALUES,
}
CUSTOMER_REQUIRED = list(CUSTOMER_PROPS)
PREDICTED_DESCRIPTIONS = (
    ("p_alive", "Probability the customer still buys, 0-1."),
    ("orders_30d", "Expected orders in the next 30 days."),
    ("orders_90d", "Expected orders in the next 90 days."),
    ("orders_365d", "Expected orders in the next 365 days."),
    ("aov", "Expected average order value."),
    ("clv", "Predicted value of the customer's orders over the next 12 months (discounted)."),
)

SEGMENT_PROPS = {
    "code": STR,
    "name": STR,
    "type": {"type": "string", "enum": list(SEGMENT_TYPES)},
    "active": BOOL,
    "in_analytics": BOOL,
    "definition": ref("Definition"),
    "size": _nullable(dict(INT, description="Members after the last computation.")),
    "computed_at": NDT,
    "created_at": DT,
    "created_by": _nullable(dict(STR, description="The creator's email.")),
    "system": BOOL,
    "source": {"type": "string", "enum": ["definition", "list", "rfm"]},
    "interval_minutes": NINT,
}

SEGMENT_INPUT_PROPS = {
    "code": dict(STR, pattern="^[a-z0-9][a-z0-9_-]{0,62}$", description="Unique; lowercase letters, digits, _ and -."),
    "name": dict(STR, maxLength=255),
    "type": {"type": "string", "enum": list(SEGMENT_TYPES), "default": "dynamic"},
    "active": dict(BOOL, default=True),
    "in_analytics": dict(BOOL, default=False),
    "definition": ref("Definition"),
    "interval_minutes": dict(
        NINT, minimum=1, maximum=525600, description="Minutes between scheduled runs; null: the global setting."
    ),
}

SCHEMAS = {
    "Error": obj(
        {
            "error": obj(
                {
                    "code": dict(
                        STR,
                        description="bad_request, unauthorized, forbidden, not_found, method_not_allowed, "
                        "conflict, too_large, unsupported_media_type, invalid, rate_limited, "
                        "unavailable",
                    ),
                    "message": dict(STR, description="For people."),
                    "details": dict(
                        ANY,
                        description="Null, or what exactly is wrong: for invalid data a list of "
                        "{field, message} (definitions add block, filter and agg, 1-based).",
                    ),
                },
                required=("code", "message", "details"),
            )
        },
        required=("error",),
    ),
    "Definition": {
        "type": "object",
        "additionalProperties": True,
        "description": "A segment definition (shared/spec/segment-definition.md): "
        "{version: 1, match: all|any, blocks: [{entity, match, filters, having?, "
        "having_match?}]}. Entities: " + ", ".join(ENTITIES) + ".",
        "properties": {
            "version": {"type": "integer", "enum": [1]},
            "match": {"type": "string", "enum": ["all", "any"]},
            "blocks": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Segment": obj(SEGMENT_PROPS, required=list(SEGMENT_PROPS)),
    "SegmentInput": obj(SEGMENT_INPUT_PROPS, required=("code", "name", "definition")),
    "SegmentUpdate": obj(SEGMENT_INPUT_PROPS, description="Fields left out keep their value."),
    "SegmentList": obj({"items": {"type": "array", "items": ref("Segment")}}, required=("items",)),
    "RunQueued": obj({"run_id": INT}, required=("run_id",)),
    "Run": obj(
        {
            "id": INT,
            "segment": dict(STR, description="The segment's code."),
            "status": {"type": "string", "enum": list(RUN_STATUSES)},
            "size": NINT,
            "entered": NINT,
            "exited": NINT,
            "started_at": NDT,
            "finished_at": NDT,
            "error": NSTR,
            "trigger": dict(STR, description="created, edited, user, schedule, dependency or retry."),
            "created_at": DT,
        },
        required=("id", "segment", "status", "size", "entered", "exited", "started_at", "finished_at", "error"),
    ),
    "Customer": obj(CUSTOMER_PROPS, required=CUSTOMER_REQUIRED),
    "CustomerWithSegments": obj(
        dict(
            CUSTOMER_PROPS,
            segments={
                "type": "array",
                "items": STR,
                "description": "Codes of the segments the customer is a member of.",
            },
            predicted=obj(
                {name: _nullable(dict(NUM, description=text)) for name, text in PREDICTED_DESCRIPTIONS},
                required=[name for name, _text in PREDICTED_DESCRIPTIONS],
                description="The scores of the last prediction fit, as the segment filters "
                "`predicted.<name>` read them; null without orders or before a first fit.",
            ),
        ),
        required=CUSTOMER_REQUIRED + ["segments"],
    ),
    "Member": obj(
        dict(CUSTOMER_PROPS, member_since=dict(DT, description="When the customer entered.")),
        required=CUSTOMER_REQUIRED + ["member_since"],
    ),
    "CustomerPage": obj(
        {
            "items": {"type": "array", "items": {"oneOf": [ref("Customer"), ref("Member")]}},
            "next_cursor": _nullable(
                dict(STR, description="Pass as `cursor` for the next page; null on the last page.")
            ),
        },
        required=("items", "next_cursor"),
    ),
    "MemberPage": obj(
        {"items": {"type": "array", "items": ref("Member")}, "next_cursor": NSTR}, required=("items", "next_cursor")
    ),
    "Change": obj(
        {
            "external_id": STR,
            "change": {"type": "string", "enum": ["entered", "exited"]},
            "at": DT,
            "run_id": _nullable(dict(INT, description="Null for real-time re-checks.")),
        },
        required=("external_id", "change", "at", "run_id"),
    ),
    "Version": obj(
        {
            "number": dict(
                INT, description="1 for the first save; each save of the definition, type or interval adds one."
            ),
            "definition": ref("Definition"),
            "type": {"type": "string", "enum": ["static", "dynamic"]},
            "interval_minutes": NINT,
            "created_at": DT,
            "created_by": dict(NSTR, description="The email of the user who saved it."),
            "restored_from": dict(NINT, description="The version a restore copied; null for an edit."),
            "size": dict(NINT, description="Members at the first run finished after the save; null until then."),
            "computed_at": NDT,
        },
        required=(
            "number",
            "definition",
            "type",
            "interval_minutes",
            "created_at",
            "created_by",
            "restored_from",
            "size",
            "computed_at",
        ),
    ),
    "VersionPage": obj(
        {"items": {"type": "array", "items": ref("Version")}, "next_cursor": NSTR}, required=("items", "next_cursor")
    ),
    "HistoryPage": obj(
        {"items": {"type": "array", "items": ref("Change")}, "next_cursor": NSTR}, required=("items", "next_cursor")
    ),
    "PreviewInput": obj(
        {
            "definition": ref("Definition"),
            "at": dict(
                NDT, description="Evaluation time (default now); without an offset it is in the account time zone."
            ),
        },
        required=("definition",),
    ),
    "Preview": obj(
        {"count": INT, "sample": {"type": "array", "maxItems": 20, "items": ref("Customer")}},
        required=("count", "sample"),
    ),
    "CustomerInput": obj(
        {
            "external_id": dict(STR, description="Optional; must equal the one in the path."),
            "type": dict(CELL, description="contact or company."),
            "first_name": TEXT_IN,
            "last_name": TEXT_IN,
            "company_name": TEXT_IN,
            "email": dict(TEXT_IN, description="An email address (name@example.com); anything else answers 422."),
            "phone": dict(
                CELL,
                description="A phone number; stored in E.164 when its country is known (+code, or `country`). "
                "Anything that is not a phone number answers 422.",
            ),
            "gender": dict(CELL, description="male or female."),
            "birth_date": dict(CELL, description="YYYY-MM-DD or DD.MM.YYYY."),
            "city": TEXT_IN,
            "country": TEXT_IN,
            "time_zone": dict(TEXT_IN, description="An IANA zone (Europe/Moscow); empty: the account's."),
            "source": TEXT_IN,
            "manager": dict(TEXT_IN, description="A user's email."),
            "email_consent": dict(CELL, description="true/false, yes/no, 1/0, да/нет."),
            "sms_consent": CELL,
            "language": dict(CELL, description="en, ru or vi (ru-RU reads as ru)."),
            "created_at": dict(CELL, description="ISO 8601; without an offset in the account time zone."),
            "tags": {
                "nullable": True,
                "oneOf": [{"type": "array", "items": STR}, STR],
                "description": "A list, or one text with | between tags; replaces the customer's tags.",
            },
            "custom": {
                "type": "object",
                "additionalProperties": CELL,
                "description": "Values by custom field code; the fields must exist.",
            },
        },
        description="The columns of the customers CSV. Fields left out keep their stored value; null clears.",
    ),
    "OrderItemInput": obj(
        {
            "sku": STR,
            "product_name": TEXT_IN,
            "product_group": dict(TEXT_IN, description="Path with /, e.g. Tea/Chinese tea."),
            "quantity": CELL,
            "price": CELL,
        },
        required=("sku",),
    ),
    "OrderInput": obj(
        {
            "external_id": STR,
            "customer_external_id": STR,
            "ordered_at": dict(CELL, description="ISO 8601."),
            "status": TEXT_IN,
            "shop": TEXT_IN,
            "total": dict(CELL, description="Money, at most two decimals."),
            "items": {
                "type": "array",
                "nullable": True,
                "maxItems": 1000,
                "items": ref("OrderItemInput"),
                "description": "Replaces the order's items; left out: items unchanged.",
            },
            "custom": {"type": "object", "additionalProperties": CELL},
        },
        required=("customer_external_id", "ordered_at"),
    ),
    "OrderItem": obj(
        {"sku": STR, "product_name": NSTR, "product_group": NSTR, "quantity": INT, "price": NUM},
        required=("sku", "product_name", "product_group", "quantity", "price"),
    ),
    "Order": obj(
        {
            "external_id": STR,
            "customer_external_id": STR,
            "ordered_at": DT,
            "status": NSTR,
            "shop": NSTR,
            "total": NUM,
            "items": {"type": "array", "items": ref("OrderItem")},
            "custom": CUSTOM_VALUES,
        },
        required=("external_id", "customer_external_id", "ordered_at", "status", "shop", "total", "items", "custom"),
    ),
    "DealInput": obj(
        {
            "external_id": STR,
            "customer_external_id": STR,
            "pipeline": STR,
            "stage": STR,
            "stage_kind": dict(CELL, description="open, won or lost (for a stage created now)."),
            "amount": CELL,
            "manager": TEXT_IN,
            "created_at": CELL,
            "closed_at": CELL,
            "custom": {"type": "object", "additionalProperties": CELL},
        },
        required=("customer_external_id", "pipeline", "stage"),
    ),
    "Deal": obj(
        {
            "external_id": STR,
            "customer_external_id": STR,
            "pipeline": STR,
            "stage": STR,
            "stage_kind": {"type": "string", "enum": list(STAGE_KINDS)},
            "amount": NUM,
            "manager": NSTR,
            "created_at": DT,
            "closed_at": NDT,
            "custom": CUSTOM_VALUES,
        },
        required=(
            "external_id",
            "customer_external_id",
            "pipeline",
            "stage",
            "stage_kind",
            "amount",
            "manager",
            "created_at",
            "closed_at",
            "custom",
        ),
    ),
    "MessageInput": obj(
        {
            "customer_external_id": STR,
            "channel": {"type": "string", "enum": list(CHANNELS)},
            "kind": {"type": "string", "enum": list(MESSAGE_KINDS)},
            "mailing": TEXT_IN,
            "occurred_at": DT,
        },
        required=("customer_external_id", "channel", "kind", "occurred_at"),
    ),
    "Message": obj(
        {
            "customer_external_id": STR,
            "channel": {"type": "string", "enum": list(CHANNELS)},
            "kind": {"type": "string", "enum": list(MESSAGE_KINDS)},
            "mailing": NSTR,
            "occurred_at": DT,
        },
        required=("customer_external_id", "channel", "kind", "mailing", "occurred_at"),
    ),
    "EventInput": obj(
        {
            "customer_external_id": STR,
            "event": dict(STR, description="Event code; new codes are created on first use."),
            "occurred_at": DT,
            "properties": {"type": "object", "nullable": True},
        },
        required=("customer_external_id", "event", "occurred_at"),
    ),
    "Event": obj(
        {
            "customer_external_id": STR,
            "event": STR,
            "occurred_at": DT,
            "properties": {"type": "object", "nullable": True},
        },
        required=("customer_external_id", "event", "occurred_at", "properties"),
    ),
}

# Mailings and triggers (issue 17): control group, caps, quiet hours, uplift.
LIMITS_PROPS = {
    "holdout_percent": dict(INT, minimum=0, maximum=50, description="Share held out as the control group, %."),
    "transactional": dict(BOOL, description="Not counted or stopped by frequency caps and quiet hours."),
    "priority": dict(INT, minimum=-100, maximum=100, description="Higher first when several mailings wait."),
    "conversion_days": dict(INT, minimum=1, maximum=365, description="The uplift report's window, days."),
}
NNUM = _nullable(NUM)
DIFFERENCE = _nullable(obj({"difference": NUM, "low": NUM, "high": NUM}, required=("difference", "low", "high")))
UPLIFT_GROUP = obj(
    {
        "recipients": INT,
        "buyers": INT,
        "orders": INT,
        "revenue": NUM,
        "conversion": NNUM,
        "revenue_per_recipient": NNUM,
        "average_order_value": NNUM,
    },
    required=(
        "recipients",
        "buyers",
        "orders",
        "revenue",
        "conversion",
        "revenue_per_recipient",
        "average_order_value",
    ),
)
RECIPIENT_COUNTS = ("total", "pending", "sending", "sent", "failed", "skipped", "held_out", "capped", "waiting")
SCHEMAS.update(
    {
        "LimitsInput": obj(LIMITS_PROPS, description="Any of the fields; the others stay."),
        "Mailing": obj(
            {
                "id": INT,
                "name": STR,
                "kind": dict(STR, enum=["campaign", "trigger"]),
                "channel": dict(STR, enum=["email", "sms"]),
                "status": NSTR,
                "segment": NSTR,
                **LIMITS_PROPS,
                "recipients": obj(
                    {k: INT for k in RECIPIENT_COUNTS},
                    required=RECIPIENT_COUNTS,
                    description="Recipients by status; `waiting`: pending until quiet hours end.",
                ),
                "waiting_until": dict(NDT, description="When the last waiting message's quiet hours end."),
                "created_at": DT,
                "started_at": NDT,
                "finished_at": NDT,
            },
            required=(
                "id",
                "name",
                "kind",
                "channel",
                "status",
                "segment",
                *LIMITS_PROPS,
                "recipients",
                "waiting_until",
                "created_at",
                "started_at",
                "finished_at",
            ),
        ),
        "Uplift": obj(
            {
                "mailing_id": INT,
                "days": INT,
                "enough_data": dict(
                    BOOL,
                    description="Each group has at least 100 recipients and both together 10 buyers; "
                    "until then the differences are null.",
                ),
                "sent": UPLIFT_GROUP,
                "control": UPLIFT_GROUP,
                "conversion_difference": dict(DIFFERENCE, description="Sent minus control, 95 % two-proportion."),
                "revenue_per_recipient_difference": dict(DIFFERENCE, description="Sent minus control, 95 % Welch."),
                "cumulative_conversion": obj(
                    {"sent": {"type": "array", "items": NUM}, "control": {"type": "array", "items": NUM}},
                    required=("sent", "control"),
                    description="Share converted by the end of day 1, 2, … after the message.",
                ),
            },
            required=(
                "mailing_id",
                "days",
                "enough_data",
                "sent",
                "control",
                "conversion_difference",
                "revenue_per_recipient_difference",
                "cumulative_conversion",
            ),
        ),
        "Trigger": obj(
            {
                "id": INT,
                "name": STR,
                "segment": STR,
                "event": dict(STR, enum=["entered", "exited"]),
                "active": BOOL,
                **LIMITS_PROPS,
                "steps": {
                    "type": "array",
                    "items": obj(
                        {"position": INT, "action": STR, "delay_seconds": INT, "mailing_id": NINT},
                        required=("position", "action", "delay_seconds", "mailing_id"),
                    ),
                },
            },
            required=("id", "name", "segment", "event", "active", *LIMITS_PROPS, "steps"),
        ),
    }
)


# The account's campaign limits (admins): per channel a cap (messages in days,
# both null: none) and quiet hours (HH:MM, both null: none); the global control group.
_CAP_MESSAGES = dict(NINT, description="At most this many messages per customer… (null: no cap).")
_CAP_DAYS = dict(NINT, description="…in this many days.")
_QUIET_START = dict(NSTR, description="Quiet hours start, HH:MM in the customer's time zone (null: none).")
_QUIET_END = dict(NSTR, description="Quiet hours end, HH:MM.")
CAMPAIGN_LIMITS_PROPS = {
    f"{channel}_{name}": schema
    for channel in ("email", "sms")
    for name, schema in (
        ("cap_messages", _CAP_MESSAGES),
        ("cap_days", _CAP_DAYS),
        ("quiet_start", _QUIET_START),
        ("quiet_end", _QUIET_END),
    )
} | {
    "global_control_percent": dict(
        INT, description="Share of all customers, 0 to 50 percent, that gets no campaign or trigger message; 0: off."
    )
}
RECIPIENT = obj(
    {
        "id": INT,
        "customer_external_id": STR,
        "status": dict(STR, enum=list(RECIPIENT_STATUSES)),
        "reason": dict(
            NSTR,
            description="Why skipped, held out or capped: no_consent, no_address, cancelled, "
            "control, global_control, frequency_cap; a failure's error.",
        ),
        "reason_text": dict(NSTR, description="The reason as people read it, in the token user's language."),
        "sent_at": dict(NDT, description="When sent, or held out."),
        "waiting_until": dict(NDT, description="A pending message waiting for quiet hours to end: until then."),
    },
    required=("id", "customer_external_id", "status", "reason", "reason_text", "sent_at", "waiting_until"),
)
SCHEMAS.update(
    {
        "CampaignLimits": obj(
            {
                **CAMPAIGN_LIMITS_PROPS,
                "saved": dict(BOOL, description="Saved by an admin; false: the environment variables' values."),
                "updated_at": NDT,
            },
            required=(*CAMPAIGN_LIMITS_PROPS, "saved", "updated_at"),
        ),
        "CampaignLimitsInput": obj(
            CAMPAIGN_LIMITS_PROPS, description="Any of the fields; the others stay. A cap's two fields go together."
        ),
        "RecipientPage": obj(
            {"items": {"type": "array", "items": RECIPIENT}, "next_cursor": NSTR}, required=("items", "next_cursor")
        ),
    }
)


def _error(description):
    return {"description": description, "content": {"application/json": {"schema": ref("Error")}}}


RESPONSES = {
    "BadRequest": _error("Malformed: not JSON, not an object, or a bad query parameter."),
    "Unauthorized": _error("No token, or an unknown or revoked one."),
    "Forbidden": _error("The token's role does not allow this."),
    "NotFound": _error("No such resource."),
    "Conflict": _error("Conflicts with stored data."),
    "TooLarge": _error("The body is larger than the limit (1 MiB by default)."),
    "UnsupportedMediaType": _error("The body is not sent as JSON."),
    "Invalid": _error("Well-formed but invalid; `details` lists each problem."),
    "RateLimited": _error("Too many requests with this token; see Retry-After."),
    "Unavailable": _error("The queue server is not reachable."),
}


def _json(schema, description):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes, body=False):
    names = {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        409: "Conflict",
        413: "TooLarge",
        415: "UnsupportedMediaType",
        422: "Invalid",
        429: "RateLimited",
        503: "Unavailable",
    }
    wanted = set(codes) | {401, 429}
    if body:
        wanted |= {400, 413, 415, 422}
    return {str(c): {"$ref": f"#/components/responses/{names[c]}"} for c in sorted(wanted)}


def _body(name, description=None):
    body = {"required": True, "content": {"application/json": {"schema": ref(name)}}}
    if description:
        body["description"] = description
    return body


def _path_param(name, description):
    return {"name": name, "in": "path", "required": True, "schema": STR, "description": description}


LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    "description": f"Items per page (1–{MAX_LIMIT}).",
}
CURSOR = {
    "name": "cursor",
    "in": "query",
    "required": False,
    "schema": STR,
    "description": "The `next_cursor` of the previous page. Pages follow ids, so rows added or removed "
    "while paging are never skipped or repeated.",
}
ID_PARAM = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}]
CODE = _path_param("code", "The segment's code.")
EXTERNAL_ID = _path_param("external_id", "Your system's id for the record.")

PATHS = {
    "/segments": {
        "get": {
            "operationId": "listSegments",
            "summary": "All segments",
            "tags": ["Segments"],
            "responses": dict({"200": _json(ref("SegmentList"), "Segments by code.")}, **_errors(403)),
        },
        "post": {
            "operationId": "createSegment",
            "summary": "Create a segment",
            "tags": ["Segments"],
            "description": "A static or active dynamic segment is queued for computing at once. "
            "Admins and marketers only.",
            "requestBody": _body("SegmentInput"),
            "responses": dict({"201": _json(ref("Segment"), "Created.")}, **_errors(403, 409, 503, body=True)),
        },
    },
    "/segments/preview": {
        "post": {
            "operationId": "previewSegment",
            "summary": "Count and sample a definition",
            "tags": ["Segments"],
            "requestBody": _body("PreviewInput"),
            "responses": dict(
                {"200": _json(ref("Preview"), "The number of matching customers and up to 20 of them.")},
                **_errors(403, body=True),
            ),
        },
    },
    "/segments/{code}": {
        "parameters": [CODE],
        "get": {
            "operationId": "getSegment",
            "summary": "One segment",
            "tags": ["Segments"],
            "responses": dict({"200": _json(ref("Segment"), "The segment.")}, **_errors(403, 404)),
        },
        "put": {
            "operationId": "updateSegment",
            "summary": "Change a segment",
            "tags": ["Segments"],
            "description": "Queued again when the definition changed. Admins and marketers only.",
            "requestBody": _body("SegmentUpdate"),
            "responses": dict(
                {"200": _json(ref("Segment"), "The changed segment.")}, **_errors(403, 404, 409, 503, body=True)
            ),
        },
        "delete": {
            "operationId": "deleteSegment",
            "summary": "Delete a segment",
            "tags": ["Segments"],
            "description": "409 if another segment's definition uses it, or it is a system segment.",
            "responses": dict({"204": {"description": "Deleted."}}, **_errors(403, 404, 409)),
        },
    },
    "/segments/{code}/recompute": {
        "parameters": [CODE],
        "post": {
            "operationId": "recomputeSegment",
            "summary": "Queue a computation",
            "tags": ["Segments"],
            "description": "409 when the segment is not computed (inactive, frozen static, list).",
            "responses": dict(
                {"202": _json(ref("RunQueued"), "Queued; follow it at /runs/{id}.")}, **_errors(403, 404, 409, 503)
            ),
        },
    },
    "/runs/{id}": {
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}],
        "get": {
            "operationId": "getRun",
            "summary": "A computation run",
            "tags": ["Segments"],
            "responses": dict({"200": _json(ref("Run"), "The run.")}, **_errors(403, 404)),
        },
    },
    "/segments/{code}/members": {
        "parameters": [CODE],
        "get": {
            "operationId": "listMembers",
            "summary": "Members (stored membership)",
            "tags": ["Segments"],
            "parameters": [CURSOR, LIMIT],
            "responses": dict(
                {"200": _json(ref("MemberPage"), "A page of members, by customer id.")}, **_errors(400, 403, 404)
            ),
        },
    },
    "/segments/{code}/history": {
        "parameters": [CODE],
        "get": {
            "operationId": "listHistory",
            "summary": "Entries and exits",
            "tags": ["Segments"],
            "parameters": [
                {
                    "name": "since",
                    "in": "query",
                    "required": False,
                    "schema": DT,
                    "description": "Changes at or after this time.",
                },
                {
                    "name": "until",
                    "in": "query",
                    "required": False,
                    "schema": DT,
                    "description": "Changes at or before this time.",
                },
                CURSOR,
                LIMIT,
            ],
            "responses": dict(
                {"200": _json(ref("HistoryPage"), "A page of changes, in logged order.")}, **_errors(400, 403, 404)
            ),
        },
    },
    "/segments/{code}/versions": {
        "parameters": [CODE],
        "get": {
            "operationId": "listVersions",
            "summary": "Versions of the definition",
            "tags": ["Segments"],
            "parameters": [CURSOR, LIMIT],
            "responses": dict(
                {"200": _json(ref("VersionPage"), "A page of versions, newest first.")}, **_errors(400, 403, 404)
            ),
        },
    },
    "/customers": {
        "get": {
            "operationId": "listCustomers",
            "summary": "Customers",
            "tags": ["Customer data"],
            "parameters": [
                {
                    "name": "segment",
                    "in": "query",
                    "required": False,
                    "schema": STR,
                    "description": "Only members of the segment with this code.",
                },
                CURSOR,
                LIMIT,
            ],
            "responses": dict(
                {"200": _json(ref("CustomerPage"), "A page of customers, by id.")}, **_errors(400, 403, 404)
            ),
        },
    },
    "/customers/{external_id}": {
        "parameters": [EXTERNAL_ID],
        "get": {
            "operationId": "getCustomer",
            "summary": "One customer with its segments",
            "tags": ["Customer data"],
            "responses": dict({"200": _json(ref("CustomerWithSegments"), "The customer.")}, **_errors(403, 404)),
        },
        "put": {
            "operationId": "putCustomer",
            "summary": "Create or update a customer",
            "tags": ["Customer data"],
            "requestBody": _body("CustomerInput"),
            "responses": dict(
                {
                    "200": _json(ref("CustomerWithSegments"), "Updated."),
                    "201": _json(ref("CustomerWithSegments"), "Created."),
                },
                **_errors(403, 404, body=True),
            ),
        },
    },
    "/orders/{external_id}": {
        "parameters": [EXTERNAL_ID],
        "put": {
            "operationId": "putOrder",
            "summary": "Create or update an order",
            "tags": ["Customer data"],
            "description": "Keeps the customer's order rollup current and re-checks segments within seconds.",
            "requestBody": _body("OrderInput"),
            "responses": dict(
                {"200": _json(ref("Order"), "Updated."), "201": _json(ref("Order"), "Created.")},
                **_errors(403, 404, body=True),
            ),
        },
    },
    "/deals/{external_id}": {
        "parameters": [EXTERNAL_ID],
        "put": {
            "operationId": "putDeal",
            "summary": "Create or update a deal",
            "tags": ["Customer data"],
            "requestBody": _body("DealInput"),
            "responses": dict(
                {"200": _json(ref("Deal"), "Updated."), "201": _json(ref("Deal"), "Created.")},
                **_errors(403, 404, body=True),
            ),
        },
    },
    "/mailings/{id}": {
        "parameters": ID_PARAM,
        "get": {
            "operationId": "getMailing",
            "summary": "A campaign or trigger step mailing with its limits and recipient counts",
            "tags": ["Mailings"],
            "responses": dict({"200": _json(ref("Mailing"), "The mailing.")}, **_errors(403, 404)),
        },
        "patch": {
            "operationId": "patchMailing",
            "summary": "Change a draft or scheduled campaign's control group, flag, priority or window",
            "tags": ["Mailings"],
            "requestBody": _body("LimitsInput"),
            "responses": dict({"200": _json(ref("Mailing"), "Changed.")}, **_errors(403, 404, body=True)),
        },
    },
    "/mailings/{id}/uplift": {
        "parameters": ID_PARAM,
        "get": {
            "operationId": "getUplift",
            "summary": "The uplift report: sent vs control group",
            "tags": ["Mailings"],
            "parameters": [
                {
                    "name": "days",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 365},
                    "description": "Orders within this many days count (default: the mailing's window).",
                }
            ],
            "responses": dict({"200": _json(ref("Uplift"), "The report.")}, **_errors(403, 404, 422)),
        },
    },
    "/mailings/{id}/recipients": {
        "parameters": ID_PARAM,
        "get": {
            "operationId": "listRecipients",
            "summary": "A mailing's recipients with their status and reason",
            "tags": ["Mailings"],
            "parameters": [
                {
                    "name": "status",
                    "in": "query",
                    "required": False,
                    "schema": dict(STR, enum=list(RECIPIENT_STATUSES)),
                    "description": "Only recipients with this status.",
                },
                CURSOR,
                LIMIT,
            ],
            "responses": dict(
                {"200": _json(ref("RecipientPage"), "A page of recipients, by id.")}, **_errors(400, 403, 404)
            ),
        },
    },
    "/settings/campaign-limits": {
        "get": {
            "operationId": "getCampaignLimits",
            "summary": "The account's frequency caps, quiet hours and global control group",
            "tags": ["Mailings"],
            "description": "Admins only.",
            "responses": dict({"200": _json(ref("CampaignLimits"), "The limits in force.")}, **_errors(403)),
        },
        "patch": {
            "operationId": "patchCampaignLimits",
            "summary": "Change the account's campaign limits",
            "tags": ["Mailings"],
            "description": "Admins only. Saved values win over the environment variables from then on; "
            "they apply from the next message sent.",
            "requestBody": _body("CampaignLimitsInput"),
            "responses": dict({"200": _json(ref("CampaignLimits"), "Changed.")}, **_errors(403, body=True)),
        },
    },
    "/triggers/{id}": {
        "parameters": ID_PARAM,
        "get": {
            "operationId": "getTrigger",
            "summary": "A trigger with its limits and steps",
            "tags": ["Mailings"],
            "responses": dict({"200": _json(ref("Trigger"), "The trigger.")}, **_errors(403, 404)),
        },
        "patch": {
            "operationId": "patchTrigger",
            "summary": "Change a trigger's control group, flag, priority or window",
            "tags": ["Mailings"],
            "requestBody": _body("LimitsInput"),
            "responses": dict({"200": _json(ref("Trigger"), "Changed.")}, **_errors(403, 404, body=True)),
        },
    },
    "/messages": {
        "post": {
            "operationId": "postMessage",
            "summary": "Record a message event",
            "tags": ["Customer data"],
            "description": "An event equal to a stored one (customer, channel, kind, mailing, time) is "
            "not stored twice.",
            "requestBody": _body("MessageInput"),
            "responses": dict({"201": _json(ref("Message"), "Recorded.")}, **_errors(403, body=True)),
        },
    },
    "/events": {
        "post": {
            "operationId": "postEvent",
            "summary": "Record an event occurrence",
            "tags": ["Customer data"],
            "requestBody": _body("EventInput"),
            "responses": dict({"201": _json(ref("Event"), "Recorded.")}, **_errors(403, body=True)),
        },
    },
}


def document(server_url="/api/v1"):
    """The OpenAPI document (a fresh dict)."""
    return copy.deepcopy(
        {
            "openapi": "3.0.3",
            "info": {
                "title": "Segmento REST API",
                "version": VERSION,
                "description": "Segments, their members and history, and customer data upserts by external_id. "
                "Authenticate with `Authorization: Bearer <token>` (tokens are made on the "
                "API tokens page or with `flask api-token create --user EMAIL`); the token acts "
                "with its user's role: admins and marketers write, managers read. Every error is "
                '`{"error": {"code", "message", "details"}}`. Requests are limited per '
                "token (429 with Retry-After); bodies to 1 MiB (413).",
            },
            "servers": [{"url": server_url}],
            "security": [{"bearerAuth": []}],
            "tags": [{"name": "Segments"}, {"name": "Customer data"}, {"name": "Mailings"}],
            "paths": PATHS,
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "sgm_… token"}},
                "schemas": SCHEMAS,
                "responses": RESPONSES,
            },
        }
    )


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(document())
