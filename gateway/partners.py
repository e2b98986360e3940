"""Partner systems and their API keys."""

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.errors import NotAuthenticated
from gateway.store.models import Partner

KEY_PREFIX = "cbk_"


def hash_api_key(api_key: str) -> str:
    """Keys are random 256-bit tokens, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def register_partner(
    *, session: Session, partner_id: str, name: str, system: str, api_key: str | None = None
) -> tuple[Partner, str]:
    """Add a partner system; returns it with its API key, which is stored only hashed."""
    key = api_key or KEY_PREFIX + secrets.token_urlsafe(32)
    partner = Partner(id=partner_id, name=name, system=system, api_key_hash=hash_api_key(key))
    session.add(partner)
    session.flush()
    return partner, key


def authenticate(*, session: Session, api_key: str | None) -> Partner:
    """The active partner owning `api_key`, or NotAuthenticated."""
    if not api_key:
        raise NotAuthenticated()
    partner = session.scalar(select(Partner).where(Partner.api_key_hash == hash_api_key(api_key)))
    if partner is None or not partner.active:
        raise NotAuthenticated("The API key is not valid.")
    return partner
