"""The audit trail (``trail.py``: append-only, hash-chained records of every answer) and its reports
(``report.py``: one conversation or a time range as JSON or a printable HTML page).

A package of its own rather than part of ``monitoring/``: monitoring counts and times requests
for operators, and forgets; the audit trail keeps what each person was told, from which
documents, for as long as the centre must be able to show it.
"""

from neoc_assistant.audit.trail import Asker, AuditTrail

__all__ = ["Asker", "AuditTrail"]
