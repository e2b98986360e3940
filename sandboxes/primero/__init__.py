"""A stand-in of Primero v2 (CPIMS+ / GBVIMS+): `/api/v2` REST with its own SQLite store.

Modelled on `../shared/reference/primero-v2.md` (Primero at 4b95bf9):

- Auth: `POST /api/v2/tokens` `{"user": {"user_name", "password"}}` → `token`, then
  `Authorization: Bearer <token>`; HTTP Basic works on every call too. An unknown or
  expired token is a 401.
- Envelopes: `{"data": {...}}`, lists `{"data": [...], "metadata": {total, per, page}}`
  (case, agency and lookup lists are paged with `page` / `per`, `per` ≤ 1000; transition
  lists are not), errors `{"errors": [{status, resource, message, detail?}]}`.
- Cases: `GET/POST /api/v2/cases`, `GET/PATCH/DELETE /api/v2/cases/{uuid}`; any field is a
  filter (`last_updated_at=<iso>..`, `casebridge_referral_id=<id>`, `case_id_display=…`).
- Transitions: `GET /api/v2/cases/{uuid}/transitions?types=Referral,Transfer`;
  `GET/POST …/referrals`, `PATCH/DELETE …/referrals/{id}`; `GET/POST …/transfers`,
  `PATCH …/transfers/{id}`; `GET/POST …/assigns`. Statuses `in_progress`, `accepted`,
  `rejected`, `done`, `revoked`.
- Flags: `GET/POST /api/v2/cases/{uuid}/flags` (`{"data": {"message", "date"}}`),
  `PATCH …/flags/{id}` (`{"data": {"unflag_message"}}` resolves it); the case's `flagged`.
- Reference data: `/api/v2/primero`, `/api/v2/agencies`, `/api/v2/lookups`,
  `/api/v2/users/refer-to|transfer-to|assign-to`.
- Sandbox switches (never faulted): `GET/PUT /_sandbox/faults`,
  `POST /_sandbox/tokens/expire`.

The external reference: this deployment adds a custom case field
`casebridge_referral_id`, the id of the CaseBridge referral or transfer for which the
gateway created the case (a case arriving through CaseBridge belongs to one referral or
transfer). Primero's transitions table has fixed columns, so the reference lives on the
case, as the proGres integration keeps `progres_interventionnumber` on a service row.
"""
