"""Security headers on every answer, from one place (the request middleware). Every answer is
`nosniff` and may not be framed. The console gets its content security policy (its one
script and styles from itself, nothing inline) and sends its address only to itself, which
keeps the Origin header its forms are checked by; the API's JSON answers get a policy that
allows nothing and send no referrer. Swagger UI and ReDoc (/docs, /redoc) load their scripts
from a CDN, so they get no policy. HSTS is sent only over HTTPS (as uvicorn sees the
request: behind a proxy, with `--proxy-headers` trusting its X-Forwarded-Proto).
"""

from starlette.requests import Request
from starlette.responses import Response

CONSOLE_CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
               "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000"
_DOCS = ("/docs", "/redoc")
_STATIC = "/console/static/"


def add_security_headers(request: Request, response: Response) -> None:
    """Set the security headers a route did not set itself."""
    path = request.url.path
    console = path == "/console" or path.startswith("/console/")
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin" if console else "no-referrer")
    if console:
        headers.setdefault("Content-Security-Policy", CONSOLE_CSP)
    elif not path.startswith(_DOCS):
        headers.setdefault("Content-Security-Policy", API_CSP)
    if not path.startswith(_STATIC):  # answers may hold personal data: no copy kept anywhere
        headers.setdefault("Cache-Control", "no-store")
    if request.url.scheme == "https":
        headers.setdefault("Strict-Transport-Security", HSTS)
