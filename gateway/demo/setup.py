"""The demo's systems, ports and demo-only accounts, and the store prepared for them."""

from dataclasses import dataclass
from pathlib import Path

from gateway.console.users import create_user
from gateway.partners import register_partner
from gateway.protection.crypto import new_key_line
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work, upgrade
from gateway.store.models import ConsoleUser, Partner


@dataclass(frozen=True)
class Sandbox:
    partner_id: str
    name: str
    system: str
    country: str
    option: str | None  # --option of `casebridge sandbox`
    credentials: dict[str, str]


PROGRES = {"client_id": "casebridge", "client_secret": "sandbox-secret"}
PRIMERO = {"user": "casebridge", "password": "sandbox-passw0rd"}
NDELIUS = {"client_id": "casebridge", "client_secret": "casebridge-sandbox-secret"}

# In port order after the gateway (P) and the scheduler (P+1): P+2 upward.
SANDBOXES = (
    Sandbox("progres-eth", "UNHCR proGres v4, Ethiopia operation", "progres", "ETH", None,
            PROGRES),
    Sandbox("primero-ssd", "Primero CPIMS+, child protection agency, South Sudan", "primero",
            "SSD", "instance=cpims-ssd", PRIMERO),
    Sandbox("primero-uga", "Primero CPIMS+, child protection agency, Uganda", "primero",
            "UGA", "instance=cpims-uga", PRIMERO),
    Sandbox("ndelius-n07", "nDelius, probation provider N07 (London)", "ndelius", "GBR",
            "provider=N07", NDELIUS),
    Sandbox("ndelius-n03", "nDelius, probation provider N03 (Wales)", "ndelius", "GBR",
            "provider=N03", NDELIUS),
)

# Demo-only secrets: never use fixed keys or passwords for a real partner or person.
CASEWORKER_APP = "caseworker-app"
CASEWORKER_KEY = "demo-caseworker-key-not-for-production"
# The child-protection focal point agreements/isp-ssd-eth-cp-referrals-2026 names as observer.
OBSERVER = "cp-aor-eth"
OBSERVER_KEY = "demo-observer-key-not-for-production"
OPERATOR_KEY = "demo-operator-key-not-for-production"
ROLES = ("operator", "im_officer", "auditor")


def password(role: str) -> str:
    return f"demo-{role}-password"


@dataclass(frozen=True)
class Ports:
    base: int

    @property
    def gateway(self) -> int:
        return self.base

    @property
    def scheduler(self) -> int:
        return self.base + 1

    def sandbox(self, partner_id: str) -> int:
        return self.base + 2 + [s.partner_id for s in SANDBOXES].index(partner_id)

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"


def fresh(folder: Path) -> None:
    """Delete the stores of an earlier demo (the key file stays: it holds no data)."""
    for pattern in ("demo.db*", "demo-*.db*"):
        for path in folder.glob(pattern):
            path.unlink()


def ensure_key(path: Path) -> None:
    if not path.exists() or not path.read_text().strip():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(new_key_line("demo") + "\n")
        path.chmod(0o600)


def prepare(database_url: str, ports: Ports) -> None:
    """Migrate the store; add the partners, their connections and the console users."""
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            if session.get(Partner, CASEWORKER_APP) is None:
                register_partner(session=session, partner_id=CASEWORKER_APP,
                                 name="Caseworker app (demo)", system="other",
                                 api_key=CASEWORKER_KEY)
            if session.get(Partner, OBSERVER) is None:
                register_partner(session=session, partner_id=OBSERVER,
                                 name="Child protection AoR focal point, Ethiopia (demo)",
                                 system="other", api_key=OBSERVER_KEY)
            for sandbox in SANDBOXES:
                partner = session.get(Partner, sandbox.partner_id)
                if partner is None:
                    partner, _ = register_partner(
                        session=session, partner_id=sandbox.partner_id,
                        name=f"{sandbox.name} (sandbox)", system=sandbox.system,
                        country=sandbox.country)
                partner.connection = {"base_url": ports.url(ports.sandbox(sandbox.partner_id)),
                                      "credentials": sandbox.credentials}
            for role in ROLES:
                if session.get(ConsoleUser, role) is None:
                    create_user(session=session, username=role, role=role,
                                password=password(role))
    finally:
        engine.dispose()
