"""Configuration from CASEBRIDGE_* environment variables (and an optional .env file)."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway import ROOT


class Settings(BaseSettings):
    """Every setting the gateway reads; the README's configuration table lists them."""

    model_config = SettingsConfigDict(env_prefix="CASEBRIDGE_", env_file=".env", extra="ignore",
                                      env_ignore_empty=True)

    database_url: str = Field(
        default=f"sqlite:///{ROOT / 'var' / 'casebridge.db'}",
        description="SQLAlchemy URL of the store: sqlite:///path or postgresql+psycopg://…",
    )
    amqp_url: str = Field(
        default="amqp://guest:guest@127.0.0.1:5672/%2F",
        description="RabbitMQ connection URL.",
    )
    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(default=8000, description="Port the API listens on.")
    log_level: str = Field(default="info", description="debug, info, warning or error.")
    log_json: bool = Field(default=True, description="JSON log lines (false: console rendering).")
    max_body_bytes: int = Field(
        default=1024 * 1024, description="Largest request body the API accepts, in bytes."
    )
    json_max_depth: int = Field(
        default=32, ge=1, description="Deepest nesting of arrays and objects a JSON body may have "
        "(refused with 400).")
    json_max_string: int = Field(
        default=65536, ge=1, description="Longest string (member name or value) a JSON body may "
        "hold, in characters (refused with 413).")
    json_max_items: int = Field(
        default=1000, ge=1, description="Most items an array of a JSON body may hold (refused "
        "with 413).")
    contracts_dir: Path = Field(
        default=ROOT / "contracts", description="Folder of the canonical JSON Schemas."
    )
    mappings_dir: Path = Field(
        default=ROOT / "mappings", description="Folder of the mapping files, one folder a system."
    )
    page_size_max: int = Field(default=200, description="Largest page a list request may ask for.")
    readiness_timeout: float = Field(
        default=2.0, description="Seconds /readyz waits for the database and the broker."
    )
    retry_delays: list[int] = Field(
        default=[10, 60, 600, 3600],
        description="The retry ladder: seconds before each new attempt of a failed delivery.",
    )
    delivery_limit: int = Field(
        default=5, description="Redeliveries after which the broker dead-letters a message."
    )
    relay_batch: int = Field(default=200, description="Outbox rows the relay publishes at once.")
    relay_interval: float = Field(
        default=0.1, description="Seconds the relay waits when the outbox is empty."
    )
    poll_interval: float = Field(
        default=30.0, description="Seconds between two polls of each partner system."
    )
    operator_key: str | None = Field(
        default=None,
        description="Bearer key of the operations API (/v1/ops/…); unset: that API is off.",
    )
    key_file: Path | None = Field(
        default=None,
        description="File of encryption keys, one `<id>:<base64>` a line (make one with "
        "`casebridge keys new`); the last line is the active key. Keep it outside the repository.",
    )
    keys: SecretStr | None = Field(
        default=None,
        description="Encryption keys as `<id>:<base64>,…`, instead of or besides the key file.",
    )
    active_key: str | None = Field(
        default=None, description="Id of the key that encrypts (default: the last key listed)."
    )
    agreements_dir: Path = Field(
        default=ROOT / "agreements", description="Folder of the data-sharing agreements (YAML)."
    )
    deadlines_dir: Path = Field(
        default=ROOT / "deadlines", description="Folder of the deadline policies (YAML)."
    )
    calendars_dir: Path = Field(
        default=ROOT / "calendars",
        description="Folder of the local working-day calendars (YAML): closures, openings.",
    )
    partner_rate_per_second: float = Field(
        default=500.0, gt=0, description="Requests a second a partner may make to the API, in "
        "each API process, unless its own limit is set (`casebridge partners limit`).")
    partner_rate_burst: int = Field(
        default=1000, ge=1, description="Requests a partner may make at once above its rate "
        "(the size of its token bucket), unless its own is set.")
    scheduler_interval: float = Field(
        default=30.0, gt=0,
        description="Seconds between two ticks of the scheduler (deadlines and overdue alerts).",
    )
    scheduler_port: int = Field(
        default=8001, ge=0, le=65535,
        description="Port where the scheduler serves /healthz and /metrics (0: none).",
    )
    directory_dir: Path = Field(
        default=ROOT / "directory",
        description="Folder of the service directory (YAML): organisations, services, areas.",
    )
    access_token_seconds: int = Field(
        default=3600, description="Lifetime of an OAuth2 access token, in seconds."
    )
    console_secure_cookie: bool = Field(
        default=True,
        description="Send the console's session cookie over HTTPS only. Turn off only for a "
        "console reached at http://127.0.0.1 (a browser does not send a Secure cookie over HTTP).",
    )
    console_session_hours: float = Field(
        default=8.0, gt=0, le=24,
        description="Hours a console session lasts from its login, however active it is.",
    )
    console_login_free_failures: int = Field(
        default=3, ge=0, description="Failed console logins for a username from one address "
        "before each next attempt must wait (2, 4, 8 … up to 60 s).")
    console_login_lockout_failures: int = Field(
        default=10, ge=1, description="Failed console logins for a username from one address "
        "that lock that username out from that address (not from elsewhere).")
    console_login_address_failures: int = Field(
        default=50, ge=1, description="Failed console logins from one address, whatever the "
        "usernames, that lock that address out.")
    console_login_lockout_minutes: float = Field(
        default=15.0, gt=0, description="Minutes a console login lockout lasts.")
    fhir_base_url: str | None = Field(
        default=None,
        description="The address partners reach the FHIR endpoint at (e.g. "
        "https://casebridge.example.org/fhir): the fullUrl in responses and in subscription "
        "notifications. Unset: the API answers with the address each request came to, and "
        "notifications name the Task without it.",
    )
    worker_prefetch: int = Field(
        default=10, description="Unacknowledged messages a worker holds at most."
    )
    worker_concurrency: int = Field(
        default=4, ge=1,
        description="Messages a worker delivers side by side, each about another referral "
                    "(one referral's messages always go in turn, in the order they came). "
                    "Partner systems answer slowly: while one call waits, others proceed.",
    )
    circuit_failures: int = Field(
        default=0, ge=0,
        description="Transient delivery failures to one partner in a row that open its "
                    "circuit: workers then leave the partner alone and its messages wait. "
                    "0 (the default): no circuit; each message follows its retry ladder.",
    )
    circuit_seconds: float = Field(
        default=60.0, gt=0,
        description="Seconds a partner's open circuit stays open before one delivery tries "
                    "again (a success closes it, a failure opens it anew).",
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
