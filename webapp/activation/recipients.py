"""Who can get a message: the consent and address check of a recipient row, in SQL.

Campaigns (`mailings.materialise`, `mailings.audience`) and trigger steps
(`triggers`) write `mailing_recipient` rows with INSERT ... SELECT from
`customer`; both decide `pending` or `skipped` (and why) with the same CASE,
so a customer is skipped for the same reasons whatever sent the message.
Senders check the consent again when they render a message. The consent and
address rule itself is `webapp.reach`'s (the segment figures count with it).
"""

from ..reach import consent_and_address


def recipient_case(channel):
    """SQL CASE expressions (status, reason) for a customer row `c` and a channel
    ("email" or "sms"): status `pending` or `skipped`, reason `no_consent`,
    `no_address` or NULL. Text without parameters, for an INSERT ... SELECT."""
    consent, address = consent_and_address(channel)
    status = f"CASE WHEN {consent} AND {address} THEN 'pending' ELSE 'skipped' END"
    reason = f"CASE WHEN NOT {consent} THEN 'no_consent' WHEN NOT {address} THEN 'no_address' END"
    return status, reason
