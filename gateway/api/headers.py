"""Security headers on every answer, from one place (the request middleware). Every answer is
`nosniff` and may not be framed. The console gets its content security policy (its one
script and styles from itself, nothing inline) and sends its address only to itself, which
keeps the Origin header its forms are checked by; the API's JSON answers get a policy that
allows nothing and send no referrer. Swagger UI and ReDoc (/docs, /redoc) load their scripts
from a CDN, so they get no policy. HSTS is sent only over HTTPS (as uvicorn sees the
request: behind a proxy, with `--proxy-headers` trusting its X-Forwarded-Proto).
"""

from starlette.datastructures import MutableHeaders

CONSOLE_CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
               "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000"
_DOCS = ("/docs", "/redoc")
_STATIC = "/console/static/"


def add_security_headers(path: str, https: bool, headers: MutableHeaders) -> None:
    """Set the security headers the answer to `path` did not set itself."""
    console = path == "/console" or path.startswith("/console/")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin" if console else "no-referrer")
    if console:
        headers.setdefault("Content-Security-Policy", CONSOLE_CSP)
    elif not path.startswith(_DOCS):
        headers.setdefault("Content-Security-Policy", API_CSP)
    if not path.startswith(_STATIC):  # answers may hold personal data: no copy kept anywhere
        headers.setdefault("Cache-Control", "no-store")
    if https:
        headers.setdefault("Strict-Transport-Security", HSTS)
