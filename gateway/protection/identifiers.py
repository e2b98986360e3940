"""Searchable identifiers, kept only as keyed hashes (`IdentifierDigest`).

A partner can find referrals by a person's identifier (`GET /v1/referrals?identifier=
primero_case:CP-123`) without the store holding that identifier in plain text: what is
stored is HMAC-SHA-256 under an index key derived from the active encryption key, and a
lookup hashes under every key in the ring.
"""

from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from gateway.protection.crypto import keyring
from gateway.store.models import IdentifierDigest, Referral


def search_terms(document: dict[str, Any]) -> list[str]:
    """`<system>:<value>` of each identifier of the subject, and the sender's reference."""
    subject = document.get("subject") or {}
    terms = [f"{i['system']}:{i['value']}" for i in subject.get("identifiers") or []
             if "system" in i and "value" in i]
    if document.get("external_reference"):
        terms.append(f"external_reference:{document['external_reference']}")
    return terms


def store_digests(session: Session, referral: Referral, *, new: bool = False) -> None:
    """(Re)write the referral's identifier digests under the active key (`new`: it has
    none yet, so there is nothing to delete first)."""
    if not new:
        session.execute(delete(IdentifierDigest)
                        .where(IdentifierDigest.referral_id == referral.id))
    session.add_all(digests_of(referral))


def digests_of(referral: Referral) -> list[IdentifierDigest]:
    """The referral's identifier digest rows under the active key, not yet in a session."""
    ring = keyring()
    return [IdentifierDigest(referral_id=referral.id, digest=digest)
            for digest in sorted({ring.digest(term) for term in search_terms(referral.content)})]


def lookup_digests(term: str) -> list[str]:
    """The digests `term` may be stored under (one per key in the ring)."""
    return keyring().digests(term)
