"""Every status class, for every adapter client: one answer to "retry or dead-letter?".

408, 429, 5xx, timeouts and broken connections are worth another try (transient); every
other 4xx is permanent; a 401 is first cured by a fresh token and the call sent once more.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count

import httpx
import pytest
import respx

from adapters.ndelius.client import NdeliusClient
from adapters.primero.client import PrimeroClient
from adapters.progres.client import ProgresClient
from gateway.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError

BASE = "http://partner.test"


@dataclass(frozen=True)
class Partner:
    """How to mock one adapter's token endpoint and make one authenticated call."""

    name: str
    token: Callable[[respx.MockRouter, Iterator[int]], respx.Route]
    resource: str
    call: Callable[[], object]


def _progres() -> tuple[Partner, Callable[[], None]]:
    client = ProgresClient(BASE, client_id="casebridge", client_secret="s3cret")
    return Partner(
        "progres",
        lambda router, issued: router.post(f"{BASE}/oauth2/v2.0/token").mock(
            side_effect=lambda _: httpx.Response(200, json={
                "token_type": "Bearer", "expires_in": 3599, "access_token": f"t{next(issued)}"})),
        f"{BASE}/api/data/v9.2/progres_interoperabilityreferrals",
        lambda: client.get("progres_interoperabilityreferrals", "read referrals"),
    ), client.close


def _ndelius() -> tuple[Partner, Callable[[], None]]:
    client = NdeliusClient(BASE, client_id="casebridge", client_secret="s3cret", timeout=5)
    return Partner(
        "ndelius",
        lambda router, issued: router.post(f"{BASE}/auth/oauth/token").mock(
            side_effect=lambda _: httpx.Response(200, json={
                "access_token": f"t{next(issued)}", "token_type": "bearer",
                "expires_in": 1200})),
        f"{BASE}/nsi/42",
        lambda: client.get_json("nsi.read", "/nsi/42"),
    ), client.close


def _primero() -> tuple[Partner, Callable[[], None]]:
    client = PrimeroClient(BASE, user="casebridge", password="s3cret")
    return Partner(
        "primero",
        lambda router, issued: router.post(f"{BASE}/api/v2/tokens").mock(
            side_effect=lambda _: httpx.Response(200, json={"token": f"t{next(issued)}"})),
        f"{BASE}/api/v2/cases/42",
        lambda: client.get_data("/cases/42"),
    ), client.close


@pytest.fixture(params=[_progres, _ndelius, _primero], ids=["progres", "ndelius", "primero"])
def partner(request: pytest.FixtureRequest) -> Iterator[Partner]:
    made, close = request.param()
    yield made
    close()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mocked:
        yield mocked


OK = httpx.Response(200, json={"data": {"id": "42"}, "nsiId": 42, "value": []})

TRANSIENT = [408, 429, 500, 502, 503, 504]
PERMANENT = [400, 403, 404, 409, 422]


def _outcome(partner: Partner) -> DeliveryError | None:
    try:
        partner.call()
    except DeliveryError as error:
        return error
    return None


@pytest.mark.parametrize("status", [200, 201, 204])
def test_a_success_raises_nothing(partner: Partner, router: respx.MockRouter,
                                  status: int) -> None:
    partner.token(router, count(1))
    router.get(partner.resource).mock(return_value=httpx.Response(
        status, json=OK.json()) if status != 204 else OK)
    assert _outcome(partner) is None


@pytest.mark.parametrize("status", TRANSIENT)
def test_timeouts_throttling_and_server_errors_are_transient_with_retry_after(
        partner: Partner, router: respx.MockRouter, status: int) -> None:
    partner.token(router, count(1))
    router.get(partner.resource).mock(return_value=httpx.Response(
        status, headers={"Retry-After": "7"}, json={"error": "busy"}))
    error = _outcome(partner)
    assert isinstance(error, TransientDeliveryError), partner.name
    assert (error.partner_status, error.retry_after) == (status, 7.0)


@pytest.mark.parametrize("status", PERMANENT)
def test_other_client_errors_are_permanent(partner: Partner, router: respx.MockRouter,
                                           status: int) -> None:
    partner.token(router, count(1))
    route = router.get(partner.resource).mock(return_value=httpx.Response(status, json={}))
    error = _outcome(partner)
    assert isinstance(error, PermanentDeliveryError), partner.name
    assert error.partner_status == status and route.call_count == 1


@pytest.mark.parametrize("failure", [httpx.ReadTimeout("timed out"),
                                     httpx.ConnectTimeout("timed out"),
                                     httpx.ConnectError("refused")],
                         ids=["read-timeout", "connect-timeout", "connect-error"])
def test_timeouts_and_connection_errors_are_transient(
        partner: Partner, router: respx.MockRouter, failure: Exception) -> None:
    partner.token(router, count(1))
    router.get(partner.resource).mock(side_effect=failure)
    assert isinstance(_outcome(partner), TransientDeliveryError), partner.name


def test_a_401_fetches_a_fresh_token_and_resends_once(partner: Partner,
                                                      router: respx.MockRouter) -> None:
    tokens = partner.token(router, count(1))
    route = router.get(partner.resource).mock(side_effect=[httpx.Response(401, json={}), OK])
    assert _outcome(partner) is None
    assert [c.request.headers["authorization"] for c in route.calls] == ["Bearer t1",
                                                                         "Bearer t2"]
    assert tokens.call_count == 2


def test_a_401_after_a_fresh_token_is_permanent(partner: Partner,
                                                router: respx.MockRouter) -> None:
    tokens = partner.token(router, count(1))
    route = router.get(partner.resource).mock(return_value=httpx.Response(401, json={}))
    error = _outcome(partner)
    assert isinstance(error, PermanentDeliveryError) and error.partner_status == 401
    assert (route.call_count, tokens.call_count) == (2, 2)


def test_one_token_serves_many_calls(partner: Partner, router: respx.MockRouter) -> None:
    tokens = partner.token(router, count(1))
    router.get(partner.resource).mock(return_value=OK)
    for _ in range(3):
        assert _outcome(partner) is None
    assert tokens.call_count == 1


@pytest.mark.parametrize(("status", "transient"), [(408, True), (429, True), (503, True),
                                                   (400, False), (401, False)])
def test_the_token_endpoint_is_classified_alike(partner: Partner, router: respx.MockRouter,
                                                status: int, transient: bool) -> None:
    partner.token(router, count(1)).mock(side_effect=None,
                                         return_value=httpx.Response(status, json={}))
    router.get(partner.resource).mock(return_value=OK)
    error = _outcome(partner)
    assert isinstance(error, TransientDeliveryError if transient else PermanentDeliveryError)


def test_a_token_answer_without_a_token_is_transient(partner: Partner,
                                                     router: respx.MockRouter) -> None:
    partner.token(router, count(1)).mock(side_effect=None,
                                         return_value=httpx.Response(200, json={}))
    router.get(partner.resource).mock(return_value=OK)
    assert isinstance(_outcome(partner), DeliveryError)
