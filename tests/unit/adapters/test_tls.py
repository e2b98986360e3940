"""Every client to a partner system shares one TLS context: httpx would otherwise read the
CA bundle again for each (20-50 ms of CPU), and the gateway makes one per adapter."""

import ssl

import httpx
import httpx._transports.default as httpx_transports
import pytest

from adapters.http import tls
from adapters.ndelius.client import NdeliusClient
from adapters.primero.client import PrimeroClient
from adapters.progres.client import ProgresClient
from adapters.progres.dtp import DtpClient
from gateway.fhir.subscription import Notifier

BASE = "https://partner.example.org"


def test_every_partner_client_uses_the_one_tls_context_of_the_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # As outside the tests: a client left to httpx makes a context of its own (conftest.py).
    monkeypatch.setattr(httpx_transports, "create_ssl_context", httpx.create_ssl_context)
    assert httpx.Client()._transport._pool._ssl_context is not tls()
    clients = [ProgresClient(BASE, client_id="a", client_secret="b"),
               PrimeroClient(BASE, user="u", password="p"),
               NdeliusClient(BASE, client_id="a", client_secret="b", timeout=5),
               DtpClient(BASE, subscription_key="k")]
    https = [c._http for c in clients]
    https.append(Notifier(sessions=None, translator=None).client)  # type: ignore[arg-type]
    for http in https:
        assert http._transport._pool._ssl_context is tls()
        http.close()
    assert tls().verify_mode == ssl.CERT_REQUIRED and tls().check_hostname
