"""The operations web console: server-rendered pages under /console, by role.

Operators see every partner at a glance, watch delivery, re-drive dead letters, follow
what is overdue, suspend and resume delivery to a partner and give it a new API key; IM
officers also keep (and preview) the mappings and may open a referral's content
(audited); auditors read and verify the audit trail, read the disclosure register and
answer data-subject requests; everyone reads the reports.
See docs/console.md.
"""
