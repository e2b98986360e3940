"""Settings of the console: its session cookie (CASEBRIDGE_CONSOLE_* variables)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    """How long a console session lasts and how its cookie travels."""

    model_config = SettingsConfigDict(env_prefix="CASEBRIDGE_CONSOLE_", env_file=".env",
                                      extra="ignore")

    secure_cookie: bool = Field(
        default=True,
        description="Send the session cookie over HTTPS only. Turn off only for a console "
        "reached at http://127.0.0.1 (a browser refuses to send a Secure cookie over HTTP).",
    )
    session_hours: float = Field(
        default=8.0, gt=0, le=24,
        description="Hours a console session lasts from its login, however active it is.",
    )
