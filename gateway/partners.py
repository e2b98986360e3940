"""Partner systems and their credentials: an API key, or OAuth2 client credentials.

Every secret is a random 256-bit token stored only as its SHA-256 (a slow hash adds
nothing to a secret that cannot be guessed). A partner using OAuth2 exchanges its
client id (its partner id) and secret at `POST /oauth/token` for a short-lived access
token, and sends that token as `Authorization: Bearer`, exactly like an API key.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from gateway.errors import NotAuthenticated
from gateway.protection import audit
from gateway.protection.agreements import PARTNER_ID
from gateway.store.models import AccessToken, Partner, utcnow

KEY_PREFIX = "cbk_"
SECRET_PREFIX = "cbs_"
TOKEN_PREFIX = "cbt_"


def hash_api_key(api_key: str) -> str:
    """Keys are random 256-bit tokens, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def register_partner(
    *, session: Session, partner_id: str, name: str, system: str, api_key: str | None = None,
    country: str | None = None,
) -> tuple[Partner, str]:
    """Add a partner system; returns it with its API key, which is stored only hashed."""
    key = api_key or KEY_PREFIX + secrets.token_urlsafe(32)
    partner = Partner(id=partner_id, name=name, system=system, country=country,
                      api_key_hash=hash_api_key(key))
    session.add(partner)
    session.flush()
    return partner, key


# Built once: every request reads one of them, and building a statement costs more than
# the read.
_BY_KEY = select(Partner).where(Partner.api_key_hash == bindparam("hash"))
_BY_TOKEN = (select(Partner).join(AccessToken, AccessToken.partner_id == Partner.id)
             .where(AccessToken.token_hash == bindparam("hash"),
                    AccessToken.expires_at > bindparam("now")))


def authenticate(*, session: Session, api_key: str | None) -> Partner:
    """The active partner owning `api_key` (an API key or an unexpired access token)."""
    if not api_key:
        raise NotAuthenticated()
    if api_key.startswith(TOKEN_PREFIX):
        partner = session.scalar(_BY_TOKEN, {"hash": hash_api_key(api_key), "now": utcnow()})
        if partner is None or not partner.active:
            raise NotAuthenticated("The access token is not valid or has expired.")
        return partner
    partner = session.scalar(_BY_KEY, {"hash": hash_api_key(api_key)})
    if partner is None or not partner.active:
        raise NotAuthenticated("The API key is not valid.")
    return partner


def issue_client_secret(partner: Partner) -> str:
    """A new OAuth2 client secret for `partner` (replacing any earlier one), shown once."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    partner.client_secret_hash = hash_api_key(secret)
    return secret


def issue_access_token(*, session: Session, client_id: str, client_secret: str,
                       lifetime: timedelta) -> tuple[Partner, str]:
    """An access token for valid client credentials (the client id is the partner id)."""
    partner = session.get(Partner, client_id) if PARTNER_ID.fullmatch(client_id) else None
    if (partner is None or not partner.active or partner.client_secret_hash is None
            or not hmac.compare_digest(partner.client_secret_hash,
                                       hash_api_key(client_secret))):
        raise NotAuthenticated("The client credentials are not valid.")
    now = utcnow()
    session.execute(delete(AccessToken).where(AccessToken.expires_at <= now))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(AccessToken(token_hash=hash_api_key(token), partner_id=partner.id,
                            issued_at=now, expires_at=now + lifetime))
    return partner, token


def rotate_api_key(*, session: Session, partner: Partner, actor: str) -> str:
    """A new API key for `partner`, returned once: the old one stops working at the commit.
    Audited, without either key. (OAuth2 client secrets: `issue_client_secret`.)"""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    partner.api_key_hash = hash_api_key(key)
    audit.record(session, actor=actor, action="partner.rotate_key", partner_id=partner.id)
    return key


def suspend_delivery(*, session: Session, partner: Partner, actor: str) -> bool:
    """Stop delivering to `partner`: its messages wait in its queues, nothing is lost.
    False when it was suspended already. Audited."""
    if partner.suspended_at is not None:
        return False
    partner.suspended_at, partner.suspended_by = utcnow(), actor
    audit.record(session, actor=actor, action="partner.suspend", partner_id=partner.id)
    return True


def resume_delivery(*, session: Session, partner: Partner, actor: str) -> bool:
    """Deliver to `partner` again, the messages that waited first. False when it was not
    suspended. Audited, with how long it was."""
    if partner.suspended_at is None:
        return False
    seconds = int((utcnow() - partner.suspended_at).total_seconds())
    partner.suspended_at = partner.suspended_by = None
    audit.record(session, actor=actor, action="partner.resume", partner_id=partner.id,
                 detail={"suspended_seconds": seconds})
    return True

