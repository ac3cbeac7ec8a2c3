"""The prose of the API docs page (/api/docs), for the catalogues.

The OpenAPI document (webapp.api.openapi) stays English: it is the API's
contract. The docs page for people shows its summaries, descriptions and tag
names translated; `pybabel extract` finds them here. tests/api/test_docs.py
fails when the document has prose this list lacks.
"""


def N_(text):
    """Marks `text` for the catalogues; translated when the page is drawn."""
    return text


PROSE = frozenset(
    (
        N_(
            'Segments, their members and history, and customer data upserts by external_id. Authenticate with `Authorization: Bearer <token>` (tokens are made on the API tokens page or with `flask api-token create --user EMAIL`); the token acts with its user\'s role: admins and marketers write, managers read. Every error is `{"error": {"code", "message", "details"}}`. Requests are limited per token (429 with Retry-After); bodies to 1 MiB (413).'
        ),
        N_("Segments"),
        N_("Customer data"),
        N_("All segments"),
        N_("Segments by code."),
        N_("Create a segment"),
        N_("A static or active dynamic segment is queued for computing at once. Admins and marketers only."),
        N_("Created."),
        N_("Count and sample a definition"),
        N_("The number of matching customers and up to 20 of them."),
        N_("The segment's code."),
        N_("One segment"),
        N_("The segment."),
        N_("Change a segment"),
        N_("Queued again when the definition changed. Admins and marketers only."),
        N_("The changed segment."),
        N_("Delete a segment"),
        N_("409 if another segment's definition uses it, or it is a system segment."),
        N_("Deleted."),
        N_("Queue a computation"),
        N_("409 when the segment is not computed (inactive, frozen static, list)."),
        N_("Queued; follow it at /runs/{id}."),
        N_("A computation run"),
        N_("The run."),
        N_("Members (stored membership)"),
        N_(
            "The `next_cursor` of the previous page. Pages follow ids, so rows added or removed while paging are never skipped or repeated."
        ),
        N_("Items per page (1–1000)."),
        N_("A page of members, by customer id."),
        N_("Entries and exits"),
        N_("Changes at or after this time."),
        N_("Changes at or before this time."),
        N_("A page of changes, in logged order."),
        N_("Customers"),
        N_("Only members of the segment with this code."),
        N_("A page of customers, by id."),
        N_("Your system's id for the record."),
        N_("One customer with its segments"),
        N_("The customer."),
        N_("Create or update a customer"),
        N_("Updated."),
        N_("Create or update an order"),
        N_("Keeps the customer's order rollup current and re-checks segments within seconds."),
        N_("Create or update a deal"),
        N_("Record a message event"),
        N_("An event equal to a stored one (customer, channel, kind, mailing, time) is not stored twice."),
        N_("Recorded."),
        N_("Record an event occurrence"),
        N_(
            "bad_request, unauthorized, forbidden, not_found, method_not_allowed, conflict, too_large, unsupported_media_type, invalid, rate_limited, unavailable"
        ),
        N_("For people."),
        N_(
            "Null, or what exactly is wrong: for invalid data a list of {field, message} (definitions add block, filter and agg, 1-based)."
        ),
        N_(
            "A segment definition (shared/spec/segment-definition.md): {version: 1, match: all|any, blocks: [{entity, match, filters, having?, having_match?}]}. Entities: customer, order, deal, message, event, segment."
        ),
        N_("Members after the last computation."),
        N_("The creator's email."),
        N_("Unique; lowercase letters, digits, _ and -."),
        N_("Minutes between scheduled runs; null: the global setting."),
        N_("Fields left out keep their value."),
        N_("created, edited, user, schedule, dependency or retry."),
        N_("The manager's user email."),
        N_(
            "Custom field values by field code (null where unset): text, number, YYYY-MM-DD date or boolean, by the field's type."
        ),
        N_("Codes of the segments the customer is a member of."),
        N_("Probability the customer still buys, 0-1."),
        N_("Expected orders in the next 30 days."),
        N_("Expected orders in the next 90 days."),
        N_("Expected orders in the next 365 days."),
        N_("Expected average order value."),
        N_("Predicted value of the customer's orders over the next 12 months (discounted)."),
        N_(
            "The scores of the last prediction fit, as the segment filters `predicted.<name>` read them; null without orders or before a first fit."
        ),
        N_("When the customer entered."),
        N_("Pass as `cursor` for the next page; null on the last page."),
        N_("Null for real-time re-checks."),
        N_("Evaluation time (default now); without an offset it is in the account time zone."),
        N_("Optional; must equal the one in the path."),
        N_("contact or company."),
        N_("male or female."),
        N_("YYYY-MM-DD or DD.MM.YYYY."),
        N_("A user's email."),
        N_("true/false, yes/no, 1/0, да/нет."),
        N_("ISO 8601; without an offset in the account time zone."),
        N_("A list, or one text with | between tags; replaces the customer's tags."),
        N_("Values by custom field code; the fields must exist."),
        N_("The columns of the customers CSV. Fields left out keep their stored value; null clears."),
        N_("Path with /, e.g. Tea/Chinese tea."),
        N_("ISO 8601."),
        N_("The customer's language (en, ru, vi): their unsubscribe page speaks it."),
        N_("en, ru or vi (ru-RU reads as ru)."),
        N_("Money, at most two decimals."),
        N_("Replaces the order's items; left out: items unchanged."),
        N_("open, won or lost (for a stage created now)."),
        N_("Event code; new codes are created on first use."),
        N_("Malformed: not JSON, not an object, or a bad query parameter."),
        N_("No token, or an unknown or revoked one."),
        N_("The token's role does not allow this."),
        N_("No such resource."),
        N_("Conflicts with stored data."),
        N_("The body is larger than the limit (1 MiB by default)."),
        N_("The body is not sent as JSON."),
        N_("Well-formed but invalid; `details` lists each problem."),
        N_("Too many requests with this token; see Retry-After."),
        N_("The queue server is not reachable."),
        N_("1 for the first save; each save of the definition, type or interval adds one."),
        N_("A campaign or trigger step mailing with its limits and recipient counts"),
        N_("A page of versions, newest first."),
        N_(
            "A phone number; stored in E.164 when its country is known (+code, or `country`). Anything that is not a phone number answers 422."
        ),
        N_("A trigger with its limits and steps"),
        N_("An IANA zone (Europe/Moscow); empty: the account's."),
        N_("An email address (name@example.com); anything else answers 422."),
        N_("Any of the fields; the others stay."),
        N_("Change a draft or scheduled campaign's control group, flag, priority or window"),
        N_("Change a trigger's control group, flag, priority or window"),
        N_("Changed."),
        N_("Each group has at least 100 recipients and both together 10 buyers; until then the differences are null."),
        N_("Higher first when several mailings wait."),
        N_("Mailings"),
        N_("Members at the first run finished after the save; null until then."),
        N_("Not counted or stopped by frequency caps and quiet hours."),
        N_("Orders within this many days count (default: the mailing's window)."),
        N_("Recipients by status; `waiting`: pending until quiet hours end."),
        N_("Sent minus control, 95 % Welch."),
        N_("Sent minus control, 95 % two-proportion."),
        N_("Share converted by the end of day 1, 2, … after the message."),
        N_("Share held out as the control group, %."),
        N_("The email of the user who saved it."),
        N_("The mailing."),
        N_("The report."),
        N_("The trigger."),
        N_("The uplift report's window, days."),
        N_("The uplift report: sent vs control group"),
        N_("The version a restore copied; null for an edit."),
        N_("Versions of the definition"),
        N_("When the last waiting message's quiet hours end."),
        N_("A mailing's recipients with their status and reason"),
        N_("A page of recipients, by id."),
        N_("A pending message waiting for quiet hours to end: until then."),
        N_("Admins only."),
        N_(
            "Admins only. Saved values win over the environment variables from then on; they apply from the next message sent."
        ),
        N_("Any of the fields; the others stay. A cap's two fields go together."),
        N_("At most this many messages per customer… (null: no cap)."),
        N_("Change the account's campaign limits"),
        N_("Only recipients with this status."),
        N_("Quiet hours end, HH:MM."),
        N_("Quiet hours start, HH:MM in the customer's time zone (null: none)."),
        N_("Saved by an admin; false: the environment variables' values."),
        N_("Share of all customers, 0 to 50 percent, that gets no campaign or trigger message; 0: off."),
        N_("The account's frequency caps, quiet hours and global control group"),
        N_("The limits in force."),
        N_("The reason as people read it, in the token user's language."),
        N_("When sent, or held out."),
        N_(
            "Why skipped, held out or capped: no_consent, no_address, cancelled, control, global_control, frequency_cap; a failure's error."
        ),
        N_("…in this many days."),
    )
)
