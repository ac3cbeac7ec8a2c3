"""Who can get a message: the consent and address check of a recipient row, in SQL.

Campaigns (`mailings.materialise`, `mailings.audience`) and trigger steps
(`triggers`) write `mailing_recipient` rows with INSERT ... SELECT from
`customer`; both decide `pending` or `skipped` (and why) with the same CASE,
so a customer is skipped for the same reasons whatever sent the message.
Senders check the consent again when they render a message. The consent and
address rule itself is `webapp.reach`'s (the segment figures count with it).
"""

from ..reach import bounced, consent_and_address, reachable


def recipient_case(channel):
    """SQL CASE expressions (status, reason) for a customer row `c` and a channel
    ("email" or "sms"): status `pending` or `skipped`, reason `no_consent`,
    `no_address`, `bounced` (email only) or NULL. Text without parameters, for an
    INSERT ... SELECT. `pending` is exactly `webapp.reach.reachable`."""
    consent, address = consent_and_address(channel)
    status = f"CASE WHEN {reachable(channel)} THEN 'pending' ELSE 'skipped' END"
    bounce = bounced(channel)
    bounce_reason = f" WHEN {bounce} THEN 'bounced'" if bounce else ""
    reason = f"CASE WHEN NOT {consent} THEN 'no_consent' WHEN NOT {address} THEN 'no_address'{bounce_reason} END"
    return status, reason
