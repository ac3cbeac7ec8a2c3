"""Who can be reached by email or SMS: the consent and address rule, as SQL text
over a customer row. One rule for every reader: the activation recipients'
CASE (who a mailing or trigger step skips, and why: no consent, no address,
a bounced email address) and the segment figures (how many members are
reachable). Unsubscribing clears the consent, so the
consent covers it.

Text without parameters, for the caller's statement.
"""

from .sql import escape_percent


def consent_and_address(channel, alias="c"):
    """(consent, address) SQL conditions on the customer row `alias` for a channel ("email" or "sms")."""
    if channel == "email":
        return (
            f"{alias}.email_consent",
            f"({alias}.email IS NOT NULL AND {alias}.email LIKE '{escape_percent('%_@_%')}')",
        )
    return f"{alias}.sms_consent", f"({alias}.phone IS NOT NULL AND {alias}.phone <> '')"


def bounced(channel, alias="c"):
    """The condition "a bounce on record" for email (an address that bounced once is
    not sent to again), or None for a channel without bounces (SMS)."""
    if channel != "email":
        return None
    return f"{alias}.id IN (SELECT customer_id FROM message_event WHERE kind = 'bounced' AND channel = 'email')"


def reachable(channel, alias="c"):
    """The condition "can be sent a message on `channel`": consent and an address, and
    for email no bounce on record (a bounced address is not counted as reachable)."""
    consent, address = consent_and_address(channel, alias)
    condition = f"({consent} AND {address})"
    bounce = bounced(channel, alias)
    if bounce is not None:
        condition = f"({condition} AND NOT {bounce})"
    return condition
