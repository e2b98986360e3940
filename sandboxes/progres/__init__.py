"""A stand-in of UNHCR proGres v4: a Dataverse-style OData v4 Web API over its own SQLite store,
and the interop messages of UNHCR's integration layer.

What it reproduces, and from which source, is in `shared/reference/progres-ndelius.md`
§1, §2 and §7; every table, column and option value marked [GUESS] there is a guess
here too. The parts:

- `schema`  — the tables (entity sets), their columns, option sets and status machines,
              and Dataverse's own `tasks` (activities regarding a referral or DTR);
- `odata`   — the query language (`$select`, `$filter`, `$orderby`, `$top`, skip tokens);
- `store`   — the SQLite store (one SQL table per entity set, safe under concurrent requests);
- `rules`   — proGres workflow rules run on every write (numbering, status transitions);
- `auth`    — a fake Microsoft Entra ID token endpoint and bearer-token checks;
- `dtp`     — the other way proGres talks to partners: messages through UNHCR's integration
              layer (DTP), received at `/dtp/<request type>` and pushed to a partner's inbox;
- `seed`    — obviously fictional demo people, groups, cases, referrals and transfers;
- `app`     — the HTTP surface: `create_app(database=…, seed=…, faults=…)`.
"""
