"""Shared texts and helpers of the mapping engine's unit tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

from gateway.yamlpos import Problem

ROOT = Path(__file__).resolve().parents[3]

# The smallest inbound mapping to a valid canonical referral; tests change one thing in it.
MINIMAL_REFERRAL = """\
contract: referral
inbound:
  rules:
    - to: kind
      value: referral
    - to: sender.partner
      from: from_agency
    - to: receiver.partner
      from: to_agency
    - to: subject.identifiers[system=primero_case].value
      from: case_id
    - to: subject.given_name
      from: first_name
    - to: subject.sex
      from: sex
      code: sex
      unknown: error
    - to: services
      each: services
      rules:
        - to: type
          from: service
    - to: consent.given_by
      value: self
    - to: consent.form
      value: verbal
    - to: consent.date
      from: consent_date
    - to: consent.scope.purposes
      value: [referral]
    - to: consent.scope.receivers
      from: to_agency
      transform: as_list
    - to: consent.scope.data_categories
      value: [identity]
  examples:
    - name: one child
      input: {from_agency: irc-a, to_agency: unhcr-b, case_id: C-1, first_name: Test, sex: f,
              services: [{service: education}], consent_date: 2025-03-01}
      output:
        kind: referral
        sender: {partner: irc-a}
        receiver: {partner: unhcr-b}
        subject: {identifiers: [{system: primero_case, value: C-1}], given_name: Test,
                  sex: female}
        services: [{type: education}]
        consent: {given_by: self, form: verbal, date: 2025-03-01,
                  scope: {purposes: [referral], receivers: [unhcr-b],
                          data_categories: [identity]}}
"""

SEX_CODES = """\
contract: codes/sex
codes:
  - {native: f, canonical: female}
  - {native: m, canonical: male}
  - {native: o, canonical: other}
  - {native: u, canonical: unknown}
"""


def line_of(text: str, snippet: str, occurrence: int = 1) -> int:
    """The 1-based line of the `occurrence`-th line of `text` holding `snippet`."""
    found = [n for n, line in enumerate(textwrap.dedent(text).splitlines(), 1) if snippet in line]
    assert len(found) >= occurrence, f"{snippet!r} not in the text"
    return found[occurrence - 1]


def only(problems: list[Problem], rule: str) -> list[Problem]:
    """The problems breaking `rule`."""
    return [p for p in problems if p.rule == rule]
