"""Request bodies of the sandbox API (the NewNsi shape of the Community API, §3.2).

Codes travel as plain strings in requests and come back as `{code, description}` pairs.
A body that does not parse is a 400; codes are checked against reference data (422).
"""

from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

CRN_PATTERN = r"^[A-Z][0-9]{6}$"
Crn = Annotated[str, StringConstraints(pattern=CRN_PATTERN)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=4000)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Name(Body):
    forename: ShortText
    middle_name: ShortText | None = Field(default=None, alias="middleName")
    surname: ShortText


class Mappa(Body):
    category: str
    level: str


class ManagerRef(Body):
    provider: str | None = None
    team: str
    staff: str | None = None


class NewPerson(Body):
    crn: Crn
    noms_number: Annotated[str, StringConstraints(pattern=r"^[A-Z][0-9]{4}[A-Z]{2}$")] | None = \
        Field(default=None, alias="nomsNumber")
    name: Name
    date_of_birth: date = Field(alias="dateOfBirth")
    gender: str
    pnc_number: ShortText | None = Field(default=None, alias="pncNumber")
    rosh_level: str | None = Field(default=None, alias="roshLevel")
    mappa: Mappa | None = None
    manager: ManagerRef


class Address(Body):
    address_line1: ShortText = Field(alias="addressLine1")
    address_line2: ShortText | None = Field(default=None, alias="addressLine2")
    town: ShortText
    county: ShortText | None = None
    postcode: Annotated[str, StringConstraints(max_length=10)]


class NewTransferForm(Body):
    crn: Crn | None = Field(default=None, description="if given, the NSI's offenderCrn")
    current_pdu: str | None = Field(default=None, alias="currentPdu",
                                    description="default: the person's PDU")
    current_team: str | None = Field(default=None, alias="currentTeam")
    receiving_pdu: str = Field(alias="receivingPdu")
    receiving_team: str | None = Field(default=None, alias="receivingTeam",
                                       description="default: the PDU's case-transfer SPOC")
    reason: str
    reason_details: LongText | None = Field(default=None, alias="reasonDetails")
    proposed_address: Address | None = Field(default=None, alias="proposedAddress")
    sentence_type: str = Field(alias="sentenceType")
    rosh_level: str = Field(alias="roshLevel")
    mappa: Mappa | None = None
    victim_contact: bool = Field(alias="victimContact")
    victim_contact_details: LongText | None = Field(default=None, alias="victimContactDetails")
    outstanding_actions: LongText | None = Field(default=None, alias="outstandingActions")
    move_start_date: date | None = Field(default=None, alias="moveStartDate")
    move_end_date: date | None = Field(default=None, alias="moveEndDate")


class NewAction(Body):
    description: ShortText
    owner: Literal["SENDING", "RECEIVING"] = "RECEIVING"
    due_date: date | None = Field(default=None, alias="dueDate")


class NewNsi(Body):
    type: str
    sub_type: str | None = Field(default=None, alias="subType")
    offender_crn: Crn = Field(alias="offenderCrn")
    event_id: int | None = Field(default=None, alias="eventId")
    referral_date: date | None = Field(default=None, alias="referralDate")
    expected_start_date: date | None = Field(default=None, alias="expectedStartDate")
    expected_end_date: date | None = Field(default=None, alias="expectedEndDate")
    status: str | None = None
    status_date: datetime | None = Field(default=None, alias="statusDate")
    notes: LongText | None = None
    intended_provider: str = Field(alias="intendedProvider")
    manager: ManagerRef | None = None
    external_reference: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = \
        Field(default=None, alias="externalReference")
    transfer_form: NewTransferForm = Field(alias="transferForm")
    actions: list[NewAction] | None = None


class StatusChange(Body):
    status: str
    status_date: datetime | None = Field(default=None, alias="statusDate")
    outcome: str | None = None
    notes: LongText | None = None
    manager: ManagerRef | None = Field(
        default=None, description="on completing a case transfer: the new offender manager")
    row_version: int | None = Field(default=None, alias="rowVersion")


class NsiPatch(Body):
    external_reference: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = \
        Field(default=None, alias="externalReference")
    notes: LongText | None = None


class ActionUpdate(Body):
    completed_date: date | None = Field(alias="completedDate")


class Allocation(Body):
    team: str
    staff: str | None = None
    reason: str = "RA1"


class NewContact(Body):
    """The Delius API's NewContact (community-api `deliusapi/NewContact.java`), with the NSI."""

    offender_crn: Crn = Field(alias="offenderCrn")
    type: str
    nsi_id: int | None = Field(default=None, alias="nsiId")
    contact_date: date | None = Field(default=None, alias="date",
                                      description="default: today (Europe/London)")
    start_time: time | None = Field(default=None, alias="startTime")
    provider: str | None = Field(default=None, description="default: who manages the NSI, "
                                                           "else the person")
    team: str | None = None
    staff: str | None = None
    alert: bool = False
    sensitive: bool = False
    notes: LongText | None = None
    description: ShortText | None = None
    external_reference: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = \
        Field(default=None, alias="externalReference")


class ContactPatch(Body):
    alert: bool = Field(description="false clears the alert from the manager's list")
