"""The console's Pathways page: the matrix of an area for a profile, the refused files."""

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from console_testkit import PASSWORD

from gateway.settings import Settings
from servers import LiveServer
from testland import TESTLAND, write


@pytest.fixture(scope="module")
def console_of_testland(settings: Settings, tmp_path_factory: pytest.TempPathFactory
                        ) -> Iterator[tuple[LiveServer, Path]]:
    folder = tmp_path_factory.mktemp("directory")
    write(folder)
    with LiveServer(settings.model_copy(update={"console_secure_cookie": False,
                                                "directory_dir": folder})) as server:
        yield server, folder


def test_the_pathway_shows_organisations_by_service_type_with_availability_and_contact(
        login: Callable[..., httpx.Client], users) -> None:
    operator = login(users.operator)
    page = operator.get("/console/pathways", params={"area": "pdu-cardiff-vale",
                                                     "profile": "person_on_probation"})
    assert page.status_code == 200
    matrix = page.text[page.text.index('<table class="pathway">'):]
    matrix = matrix[:matrix.index("</table>")]
    assert "<th>Probation supervision</th>" in matrix
    assert "availability-accepting" in matrix
    assert "Cardiff and Vale PDU - case transfer SPOC" in matrix
    assert "spoc.cardiff-vale@example.org" in matrix
    assert "Gwent PDU" not in matrix  # another PDU of the region serves another area
    assert '<option value="pdu-cardiff-vale" selected>' in page.text


def test_a_refused_directory_file_is_listed_with_its_problems(
        console_of_testland: tuple[LiveServer, Path], users) -> None:
    server, folder = console_of_testland
    with httpx.Client(base_url=server.url, timeout=20) as client:
        client.post("/console/login", data={"username": users.im_officer,
                                            "password": PASSWORD})
        before = client.get("/console/pathways")
        assert "Agency One" in before.text and "None refused" in before.text
        write(folder, TESTLAND.replace("status: suspended", "status: closed"))
        after = client.get("/console/pathways")
    assert "unknown-code: &#39;closed&#39; is not a status" in after.text
    assert "Agency One" in after.text  # the last good version stays in force
