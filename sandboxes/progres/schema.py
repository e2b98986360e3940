"""The proGres tables the sandbox serves: columns, option sets, lookups and status machines.

Names follow `shared/reference/progres-ndelius.md` §2 — including the misspelt columns
`progres_interoperabiltyreferralrejectionreason` and
`progres_interoperabilityreferralrejectionomment`, which are real. Option values start at
125080000 (publisher prefix 12508). Everything not listed as a fact there (entity set
names, the referral and transfer status values, most option sets) is a guess.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    GUID = "guid"
    STRING = "string"
    MEMO = "memo"  # multi-line text
    INT = "int"
    BOOL = "bool"
    DATE = "date"
    DATETIME = "datetime"
    CHOICE = "choice"  # an option set: an integer with a label

    @property
    def edm(self) -> str:
        return _EDM[self]


_EDM = {Kind.GUID: "Edm.Guid", Kind.STRING: "Edm.String", Kind.MEMO: "Edm.String",
        Kind.INT: "Edm.Int32", Kind.BOOL: "Edm.Boolean", Kind.DATE: "Edm.Date",
        Kind.DATETIME: "Edm.DateTimeOffset", Kind.CHOICE: "Edm.Int32"}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    choices: Mapping[int, str] | None = None
    max_length: int | None = None
    read_only: bool = False


@dataclass(frozen=True)
class Lookup:
    """A lookup column, read as `_<name>_value`, written as `<navprop>@odata.bind`.

    With several targets it is polymorphic (like `regardingobjectid`): one navigation
    property per target, `<name>_<target logical name>`.
    """

    name: str
    targets: tuple[str, ...]
    read_only: bool = False
    suffix: str = ""
    """Added to each polymorphic navigation property: an activity's `regardingobjectid`
    is bound as `regardingobjectid_<target>_task`."""

    @property
    def attribute(self) -> str:
        return f"_{self.name}_value"

    @property
    def navprops(self) -> dict[str, str]:
        if len(self.targets) == 1:
            return {self.name: self.targets[0]}
        return {f"{self.name}_{target}{self.suffix}": target for target in self.targets}


@dataclass(frozen=True)
class StatusModel:
    """Status reasons (`statuscode` → (`statecode`, label)) and the moves allowed between them.

    `transitions` None means any valid statecode/statuscode pair may follow any other.
    """

    reasons: Mapping[int, tuple[int, str]]
    defaults: Mapping[int, int]
    transitions: Mapping[int, frozenset[int]] | None = None
    states: Mapping[int, str] = field(default_factory=lambda: {0: "Active", 1: "Inactive"})

    def state_of(self, statuscode: int) -> int | None:
        reason = self.reasons.get(statuscode)
        return reason[0] if reason else None


GENERIC_STATUS = StatusModel(reasons={1: (0, "Active"), 2: (1, "Inactive")},
                             defaults={0: 1, 1: 2})
# An activity (a task) is Open, Completed or Canceled, with Dataverse's own status reasons.
TASK_STATUS = StatusModel(
    reasons={2: (0, "Not Started"), 3: (0, "In Progress"), 4: (0, "Waiting on someone else"),
             7: (0, "Deferred"), 5: (1, "Completed"), 6: (2, "Canceled")},
    defaults={0: 2, 1: 5, 2: 6},
    states={0: "Open", 1: "Completed", 2: "Canceled"})


@dataclass(frozen=True)
class Entity:
    logical: str
    set_name: str
    primary_name: str
    columns: tuple[Column, ...]
    lookups: tuple[Lookup, ...] = ()
    status: StatusModel = GENERIC_STATUS
    autonumber: tuple[str, str] | None = None
    """(column, format) — `{office}`, `{yy}` and `{n}` are filled in on create."""
    alternate_keys: tuple[str, ...] = ()
    primary_key: str | None = None
    """The key column when it is not `<logical name>id` (an activity's is `activityid`)."""

    @property
    def key(self) -> str:
        return self.primary_key or f"{self.logical}id"

    @property
    def edm_type(self) -> str:
        return f"Microsoft.Dynamics.CRM.{self.logical}"

    def all_columns(self) -> dict[str, Column]:
        """Every readable non-lookup property, system columns included."""
        system = (
            Column(self.key, Kind.GUID, read_only=True),
            Column("statecode", Kind.CHOICE, self.status.states),
            Column("statuscode", Kind.CHOICE,
                   {code: label for code, (_, label) in self.status.reasons.items()}),
            Column("createdon", Kind.DATETIME, read_only=True),
            Column("modifiedon", Kind.DATETIME, read_only=True),
            Column("versionnumber", Kind.INT, read_only=True),
        )
        return {c.name: c for c in (*system, *self.columns)}

    def all_lookups(self) -> dict[str, Lookup]:
        system = (
            Lookup("createdby", ("systemuser",), read_only=True),
            Lookup("modifiedby", ("systemuser",), read_only=True),
            Lookup("ownerid", ("systemuser",)),
            # The owner's business unit, as Dataverse keeps it on every user-owned row.
            Lookup("owningbusinessunit", ("businessunit",), read_only=True),
        )
        return {lk.name: lk for lk in (*system, *self.lookups)}

    def properties(self) -> dict[str, Kind]:
        """Every name usable in `$select`, `$filter` and `$orderby`, with its type."""
        props = {name: c.kind for name, c in self.all_columns().items()}
        props.update({lk.attribute: Kind.GUID for lk in self.all_lookups().values()})
        return props

    def navprop(self, name: str) -> tuple[Lookup, str] | None:
        """The lookup and target logical name behind a navigation property."""
        for lookup in self.all_lookups().values():
            target = lookup.navprops.get(name)
            if target is not None:
                return lookup, target
        return None


def options(*labels: str) -> dict[int, str]:
    return {125080000 + i: label for i, label in enumerate(labels)}



SEX = options("Female", "Male", "Other", "Unknown")  # [fact] f1-1
DIRECTION = options("Outgoing", "Incoming")
ROUTE_TO = options("Partner", "Unit", "User", "Service Provider")
URGENCY = options("Routine", "Urgent", "Emergency")
REVIEW_DECISION = options("Accepted", "Rejected")  # [fact] f2-3
REFERRAL_REJECTION_REASON = options(
    "Individual Not Found", "Individual Not Match UNHCR ID", "Not applicable",  # [fact] f2-3
    "Lack of capacity", "Service not available", "Not eligible", "Client refused services",
    "Duplicate referral", "Other")
OUTCOME = options("Successful", "Not successful")
CONSENT_GIVEN_BY = options("Individual", "Legal representative", "Guardian",
                           "Parent or caregiver", "Other trusted adult",
                           "Caseworker (best interests)")
CONSENT_FORM = options("Written", "Verbal")
CASE_TYPE = options("Child Protection", "SGBV", "RSD", "Statelessness (SSD)", "Resettlement",
                    "Voluntary Repatriation", "Fraud")
PRIORITY = options("Low", "Medium", "High", "Critical")
SGBV_TYPE = options("Rape", "Sexual assault", "Physical assault", "Forced marriage",
                    "Denial of resources, opportunities or services",
                    "Psychological / emotional abuse")
ASSESSMENT_TYPE = options("Initial", "Follow-up", "Closure", "Emergency")
RISK_LEVEL = options("Low", "Medium", "High")
PARTNER_TYPE = options("Implementing partner", "Operational partner", "Government",
                       "Service provider")
TASK_PRIORITY = {0: "Low", 1: "Normal", 2: "High"}  # Dataverse's prioritycode
TRANSFER_REJECTION_REASON = options(
    "Not the receiving office's responsibility", "Insufficient information",
    "Duplicate request", "Individual not found", "Other")


class ReferralStatus:
    """`progres_interoperabilityreferral.statuscode` [GUESS, reference §2.3]."""

    PENDING_RECOMMENDATION = 125080000
    PENDING_REVIEW = 125080001
    PENDING_ACKNOWLEDGEMENT = 125080002
    PENDING_ACTION = 125080003
    ACCEPTED = 125080004
    IN_PROGRESS = 125080005
    COMPLETED = 125080006
    REJECTED = 125080007
    CANCELLED = 125080008
    DELIVERY_FAILED = 125080009


class TransferStatus:
    """`progres_datatransferrequest.statuscode` [GUESS, reference §2.3]."""

    PENDING_SUBMISSION = 125080000
    PENDING_DECISION = 125080001
    PENDING_TRANSFER = 125080002
    REQUEST_REJECTED = 125080003
    TRANSFERRED = 125080004
    TRANSFER_FAILED = 125080005
    CANCELLED = 125080006


R = ReferralStatus
REFERRAL_STATUS = StatusModel(
    reasons={
        R.PENDING_RECOMMENDATION: (0, "Pending Recommendation"),
        R.PENDING_REVIEW: (0, "Pending Review"),
        R.PENDING_ACKNOWLEDGEMENT: (0, "Pending Acknowledgement"),
        R.PENDING_ACTION: (0, "Pending Action"),
        R.ACCEPTED: (0, "Accepted"),
        R.IN_PROGRESS: (0, "In Progress"),
        R.COMPLETED: (1, "Completed"),
        R.REJECTED: (1, "Rejected"),
        R.CANCELLED: (1, "Cancelled"),
        R.DELIVERY_FAILED: (1, "Delivery Failed"),
    },
    defaults={0: R.PENDING_RECOMMENDATION, 1: R.COMPLETED},
    transitions={
        R.PENDING_RECOMMENDATION: frozenset({R.PENDING_REVIEW, R.CANCELLED}),
        R.PENDING_REVIEW: frozenset({R.PENDING_RECOMMENDATION, R.PENDING_ACKNOWLEDGEMENT,
                                     R.REJECTED, R.CANCELLED}),
        R.PENDING_ACKNOWLEDGEMENT: frozenset({R.PENDING_ACTION, R.ACCEPTED, R.REJECTED,
                                              R.CANCELLED, R.DELIVERY_FAILED}),
        R.PENDING_ACTION: frozenset({R.ACCEPTED, R.REJECTED, R.CANCELLED}),
        R.ACCEPTED: frozenset({R.IN_PROGRESS, R.COMPLETED, R.CANCELLED}),
        R.IN_PROGRESS: frozenset({R.COMPLETED, R.CANCELLED}),
        R.DELIVERY_FAILED: frozenset({R.PENDING_ACKNOWLEDGEMENT, R.CANCELLED}),
        R.COMPLETED: frozenset(),
        R.REJECTED: frozenset(),
        R.CANCELLED: frozenset(),
    },
)

T = TransferStatus
TRANSFER_STATUS = StatusModel(
    reasons={
        T.PENDING_SUBMISSION: (0, "Pending Submission"),
        T.PENDING_DECISION: (0, "Pending Decision"),
        T.PENDING_TRANSFER: (0, "Pending Transfer"),
        T.REQUEST_REJECTED: (1, "Request Rejected"),
        T.TRANSFERRED: (1, "Transferred"),
        T.TRANSFER_FAILED: (1, "Transfer failed"),
        T.CANCELLED: (1, "Cancelled"),
    },
    defaults={0: T.PENDING_SUBMISSION, 1: T.TRANSFERRED},
    transitions={
        T.PENDING_SUBMISSION: frozenset({T.PENDING_DECISION, T.CANCELLED}),
        # A request sent out through an integration may fail before any decision too (the
        # receiving organisation's system could not be reached or refused it): [GUESS], as
        # for a referral's Delivery Failed; sent again, it waits for a decision once more.
        T.PENDING_DECISION: frozenset({T.PENDING_TRANSFER, T.REQUEST_REJECTED, T.CANCELLED,
                                       T.TRANSFER_FAILED}),
        T.PENDING_TRANSFER: frozenset({T.TRANSFERRED, T.TRANSFER_FAILED, T.CANCELLED}),
        T.TRANSFER_FAILED: frozenset({T.PENDING_DECISION, T.PENDING_TRANSFER, T.CANCELLED}),
        T.REQUEST_REJECTED: frozenset(),
        T.TRANSFERRED: frozenset(),
        T.CANCELLED: frozenset(),
    },
)

INDIVIDUAL_STATUS = StatusModel(
    reasons={1: (0, "Active"), 125080000: (0, "Active (Verified)"),  # [fact] two active reasons
             2: (1, "Inactive"), 125080001: (1, "Deceased")},
    defaults={0: 1, 1: 2},
)
CASE_STATUS = StatusModel(reasons={1: (0, "Open"), 2: (1, "Closed")}, defaults={0: 1, 1: 2})


def _text(name: str, length: int = 100) -> Column:
    return Column(name, Kind.STRING, max_length=length)


def _memo(name: str) -> Column:
    return Column(name, Kind.MEMO, max_length=100_000)


def _choice(name: str, choices: Mapping[int, str]) -> Column:
    return Column(name, Kind.CHOICE, choices)


# The person as the sending organisation described them, kept on the interop record until a
# proGres reviewer links (`progres_individualid`) or rejects ("Individual Not Found").
_PERSON_AS_RECEIVED = (
    _text("progres_individualreference", 20), _text("progres_givenname"),
    _text("progres_middlename"), _text("progres_familyname"),
    _text("progres_commonyusedname", 200),  # sic, as on the individual; DTP's "nickname"
    Column("progres_dateofbirth", Kind.DATE), _choice("progres_sex", SEX),
    _text("progres_primaryphonenumber", 50),
)
_CONSENT = (
    Column("progres_consentobtained", Kind.BOOL), Column("progres_consentdate", Kind.DATE),
    _choice("progres_consentgivenby", CONSENT_GIVEN_BY),
    _choice("progres_consentform", CONSENT_FORM), Column("progres_childassent", Kind.BOOL),
)
_SENDER = (
    _text("progres_orgreferralid"), _choice("progres_direction", DIRECTION),
    _text("progres_sendingorganization", 200), _text("progres_sendername", 200),
    _text("progres_senderemail", 200), _text("progres_senderphone", 50),
)

ENTITIES: tuple[Entity, ...] = (
    Entity("systemuser", "systemusers", "fullname",
           (_text("fullname", 200), _text("internalemailaddress", 200), _text("title", 128),
            _text("mobilephone", 50), Column("isdisabled", Kind.BOOL),
            Column("applicationid", Kind.GUID)),
           (Lookup("businessunitid", ("businessunit",)),
            Lookup("progres_partner", ("progres_partner",)))),  # [fact] user.progres_partner
    Entity("businessunit", "businessunits", "name", (_text("name", 160),)),
    Entity("progres_partner", "progres_partners", "progres_name",
           (_text("progres_name"), _text("progres_organizationname", 200),
            _text("progres_acronym", 20), _choice("progres_partnertype", PARTNER_TYPE)),
           autonumber=("progres_name", "{office}-{yy}-PNR-{n:05d}")),
    Entity("progres_interventiontype", "progres_interventiontypes", "progres_description",
           (_text("progres_description", 200), _text("progres_code", 20),
            Column("progres_interopenabled", Kind.BOOL))),
    Entity("progres_registrationgroup", "progres_registrationgroups", "progres_name",
           (_text("progres_name"), Column("progres_groupsize", Kind.INT),
            Column("progres_registrationdate", Kind.DATE),
            _text("progres_coalocationlevel6", 200)),
           autonumber=("progres_name", "{office}-{yy}-{n:05d}"),
           alternate_keys=("progres_name",)),
    Entity("progres_individual", "progres_individuals", "progres_id",
           (_text("progres_id", 20), _text("progres_givenname"), _text("progres_middlename"),
            _text("progres_familyname"), _text("progres_commonyusedname"),  # sic, [fact]
            Column("progres_dateofbirth", Kind.DATE), _choice("progres_sex", SEX),
            _text("progres_primaryphonenumber", 50)),
           (Lookup("progres_registrationgroupid", ("progres_registrationgroup",)),),
           status=INDIVIDUAL_STATUS,
           autonumber=("progres_id", "{office}-{n:08d}"),
           alternate_keys=("progres_id",)),
    Entity("progres_case", "progres_cases", "progres_casenumber",
           (_text("progres_casenumber", 30), _choice("progres_casetype", CASE_TYPE),
            _choice("progres_priority", PRIORITY), Column("progres_openeddate", Kind.DATE),
            _memo("progres_casedescription")),
           (Lookup("progres_individualid", ("progres_individual",)),
            Lookup("progres_registrationgroupid", ("progres_registrationgroup",))),
           status=CASE_STATUS,
           autonumber=("progres_casenumber", "{office}-{yy}-CASE-{n:07d}")),
    Entity("progres_sgbvincident", "progres_sgbvincidents", "progres_incidentnumber",
           (_text("progres_incidentnumber", 30), Column("progres_incidentdate", Kind.DATE),
            _choice("progres_incidenttype", SGBV_TYPE), _memo("progres_incidentdescription")),
           (Lookup("progres_individualid", ("progres_individual",)),
            Lookup("progres_caseid", ("progres_case",))),
           autonumber=("progres_incidentnumber", "{office}-{yy}-SGBV-{n:07d}")),
    Entity("progres_bestinterestsassessment", "progres_bestinterestsassessments",
           "progres_bianumber",
           (_text("progres_bianumber", 30), Column("progres_assessmentdate", Kind.DATE),
            _choice("progres_assessmenttype", ASSESSMENT_TYPE),
            _choice("progres_risklevel", RISK_LEVEL), _memo("progres_recommendations")),
           (Lookup("progres_individualid", ("progres_individual",)),
            Lookup("progres_caseid", ("progres_case",))),
           autonumber=("progres_bianumber", "{office}-{yy}-BIA-{n:07d}")),
    Entity("progres_lpintervention", "progres_lpinterventions", "progres_interventionnumber",
           (_text("progres_interventionnumber", 30),  # fields: [fact] flow 1 sample
            Column("progres_interventionstartdate", Kind.DATETIME),
            _memo("progres_interventiondescription"), _memo("progres_reasonforreferral"),
            _text("progres_interventionbyother", 200), _text("progres_primeroid", 100),
            # [GUESS] consent as recorded on the intervention; the flow 1 sample has none.
            *_CONSENT,
            # [GUESS] what the partner answered through the integration layer (DTP):
            # "Pending Acknowledgement" / "Delivery Fail" feedback, then its decision
            # ("acknowledged" / "rejected") — [fact] words, columns guessed.
            _text("progres_partnerstatus", 100), _text("progres_partnercaseid", 100),
            _text("progres_partneruser", 100), _memo("progres_partnerclosurereason"),
            Column("progres_partnerupdatedon", Kind.DATETIME)),
           (Lookup("progres_individual", ("progres_individual",)),
            Lookup("progres_childprotectioncase", ("progres_case",)),
            Lookup("progres_interventiontype2", ("progres_interventiontype",)),
            Lookup("progres_interventionserviceprovider", ("progres_partner",)),
            Lookup("progres_businessowner", ("systemuser",)),
            Lookup("progres_businessunit", ("businessunit",))),
           autonumber=("progres_interventionnumber", "{office}-{yy}-PRTITV-{n:07d}")),
    Entity("progres_interoperabilityreferral", "progres_interoperabilityreferrals",
           "progres_interoperabilityreferralnumber",
           (_text("progres_interoperabilityreferralnumber", 30), *_SENDER,
            _choice("progres_interoperabilityreferralrouteto", ROUTE_TO),
            _choice("progres_urgency", URGENCY), Column("progres_referraldate", Kind.DATETIME),
            Column("progres_duedate", Kind.DATE), _memo("progres_reasonforreferral"),
            _memo("progres_referralnotes"), *_PERSON_AS_RECEIVED, *_CONSENT,
            Column("progres_reviewdate", Kind.DATETIME),
            _choice("progres_reviewdecision", REVIEW_DECISION),
            _choice("progres_interoperabiltyreferralrejectionreason",  # sic, [fact]
                    REFERRAL_REJECTION_REASON),
            _memo("progres_interoperabilityreferralrejectionomment"),  # sic, [fact]
            Column("progres_acknowledgedon", Kind.DATETIME),
            _choice("progres_outcome", OUTCOME), _memo("progres_outcomenotes"),
            Column("progres_closedon", Kind.DATETIME)),
           (Lookup("progres_individualid", ("progres_individual",)),
            Lookup("progres_registrationgroupid", ("progres_registrationgroup",)),
            Lookup("progres_caseid", ("progres_case",)),
            Lookup("regardingobjectid", ("progres_sgbvincident",
                                         "progres_bestinterestsassessment",
                                         "progres_lpintervention")),
            Lookup("progres_interventiontype", ("progres_interventiontype",)),
            Lookup("progres_partnerid", ("progres_partner",)),
            Lookup("progres_assignedunitid", ("businessunit",)),
            Lookup("progres_assigneduserid", ("systemuser",)),
            Lookup("progres_reviewby", ("systemuser",))),
           status=REFERRAL_STATUS,
           autonumber=("progres_interoperabilityreferralnumber", "REF-IOP-{office}-{n:09d}"),
           alternate_keys=("progres_orgreferralid",)),
    Entity("progres_datatransferrequest", "progres_datatransferrequests",
           "progres_datatransferrequestnumber",
           (_text("progres_datatransferrequestnumber", 30), *_SENDER,
            _memo("progres_transferreason"), Column("progres_requestdate", Kind.DATETIME),
            Column("progres_duedate", Kind.DATE),
            Column("progres_transferrelatedchildprotectioncases", Kind.BOOL),
            Column("progres_transferrelatedrsdcases", Kind.BOOL),
            Column("progres_transferrelatedfraudcases", Kind.BOOL),
            *_PERSON_AS_RECEIVED, *_CONSENT,
            Column("progres_decisiondate", Kind.DATETIME),
            _choice("progres_rejectionreason", TRANSFER_REJECTION_REASON),
            _memo("progres_decisioncomment"), Column("progres_transferdate", Kind.DATETIME),
            _memo("progres_failurereason"), Column("progres_closedon", Kind.DATETIME)),
           (Lookup("progres_individualid", ("progres_individual",)),
            Lookup("progres_registrationgroupid", ("progres_registrationgroup",)),
            Lookup("progres_caseid", ("progres_case",)),
            Lookup("progres_partnerid", ("progres_partner",)),
            Lookup("progres_decisionby", ("systemuser",))),
           status=TRANSFER_STATUS,
           autonumber=("progres_datatransferrequestnumber", "DTR-{office}-{n:09d}"),
           alternate_keys=("progres_orgreferralid",)),
    # Dataverse's own activity table: a to-do tied to a record ("regarding"), with a due date
    # (`scheduledend`), owned by the user whose activities list shows it. The two interop
    # tables are enabled for activities [GUESS], so a task can be regarding them.
    Entity("task", "tasks", "subject",
           (_text("subject", 200), Column("description", Kind.MEMO, max_length=2000),
            Column("scheduledstart", Kind.DATETIME), Column("scheduledend", Kind.DATETIME),
            Column("actualend", Kind.DATETIME), _choice("prioritycode", TASK_PRIORITY),
            Column("percentcomplete", Kind.INT), _text("category", 250),
            _text("subcategory", 250)),
           (Lookup("regardingobjectid", ("progres_interoperabilityreferral",
                                         "progres_datatransferrequest"), suffix="_task"),),
           status=TASK_STATUS, primary_key="activityid"),
)

BY_SET: dict[str, Entity] = {e.set_name: e for e in ENTITIES}
BY_LOGICAL: dict[str, Entity] = {e.logical: e for e in ENTITIES}
