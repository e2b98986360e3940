"""The partner's own reason, from recorded error bodies of each system: kept (bounded) on
the error for the encrypted store, and kept out of the detail that is logged and
published."""

import httpx
import pytest

from adapters.http import PARTNER_MESSAGE_LIMIT
from adapters.ndelius import client as ndelius
from adapters.primero import client as primero
from adapters.progres import client as progres
from gateway.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError

SURNAME = "Fictionalson"

# Recorded shapes: Dataverse (MS Learn, web-api-client-errors), HMPPS (ErrorResponse of
# the probation integration services), Primero v2 (app/views/api/v2/errors/_error).
DATAVERSE_400 = {"error": {"code": "0x0", "message": "Could not find a property named "
                           "'progres_givenname2' on type "
                           "'Microsoft.Dynamics.CRM.progres_interoperabilityreferral'."}}
HMPPS_409 = {"status": 409, "errorCode": None,
             "userMessage": f"An NSI of this type is already open for {SURNAME}",
             "developerMessage": "Duplicate NSI for CRN X070001", "moreInfo": None}
PRIMERO_422 = {"errors": [
    {"status": 422, "resource": "/api/v2/cases/1/referrals", "detail": "consent",
     "message": ["transition.errors.consent"]},
    {"status": 422, "resource": "/api/v2/cases/1/referrals", "detail": "transitioned_to",
     "message": [f"User {SURNAME} cannot receive"]}]}


def refusal(raise_it: object) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        raise_it()  # type: ignore[operator]
    return caught.value


def test_a_dataverse_refusal_keeps_its_code_and_message_apart_from_the_detail() -> None:
    answer = httpx.Response(400, json=DATAVERSE_400)
    error = refusal(lambda: progres.classify(answer, "create progres_interoperabilityreferrals"))
    assert isinstance(error, PermanentDeliveryError)
    assert error.partner_error() == {"status": 400, "code": "0x0",
                                     "message": DATAVERSE_400["error"]["message"]}
    assert "progres_givenname2" not in error.detail and "(0x0)" in error.detail


def test_an_hmpps_refusal_keeps_the_user_and_developer_messages_not_a_none_code() -> None:
    error = ndelius.classify("create nsi", httpx.Response(409, json=HMPPS_409), "")
    assert error.detail == "ndelius create nsi answered 409"
    assert error.partner_error() == {
        "status": 409, "code": None,
        "message": f"An NSI of this type is already open for {SURNAME} | "
                   "Duplicate NSI for CRN X070001"}
    assert SURNAME not in error.detail and "X070001" not in error.detail


def test_a_primero_refusal_keeps_every_entry_as_field_and_message() -> None:
    answer = httpx.Response(422, json=PRIMERO_422)
    error = refusal(lambda: primero.raise_for_status(answer, "POST /cases/1/referrals"))
    assert error.partner_error() == {
        "status": 422, "code": "transition.errors.consent",
        "message": "consent: transition.errors.consent | transitioned_to: User "
                   f"{SURNAME} cannot receive"}
    assert SURNAME not in error.detail


def test_a_transient_failure_keeps_the_partners_words_too() -> None:
    answer = httpx.Response(503, json={"error": {"code": "0x80040216",
                                                 "message": "An unexpected error occurred."}})
    error = refusal(lambda: progres.classify(answer, "discover"))
    assert isinstance(error, TransientDeliveryError)
    assert error.partner_error() == {"status": 503, "code": "0x80040216",
                                     "message": "An unexpected error occurred."}


def test_a_long_partner_message_is_cut_and_a_silent_partner_leaves_none() -> None:
    long = httpx.Response(400, json={"error": {"code": "0x0", "message": "x" * 5000}})
    message = refusal(lambda: progres.classify(long, "create")).partner_message
    assert message is not None and len(message) == PARTNER_MESSAGE_LIMIT
    assert refusal(lambda: progres.classify(httpx.Response(400, text="<html>"), "create")
                   ).partner_message is None
