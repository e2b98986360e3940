"""Tables of the nDelius sandbox, named after the Delius tables they stand in for (§3, §4)."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


# --- Organisation: probation_area → borough (PDU) → district (LDU) → team → staff ------------
class Provider(Base):
    __tablename__ = "probation_area"
    code: Mapped[str] = mapped_column(String(3), primary_key=True)
    description: Mapped[str]


class Pdu(Base):
    __tablename__ = "borough"
    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    description: Mapped[str]
    provider_code: Mapped[str] = mapped_column(ForeignKey("probation_area.code"))


class District(Base):
    __tablename__ = "district"
    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    description: Mapped[str]
    pdu_code: Mapped[str] = mapped_column(ForeignKey("borough.code"))


class Team(Base):
    __tablename__ = "team"
    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    description: Mapped[str]
    district_code: Mapped[str] = mapped_column(ForeignKey("district.code"))
    pdu_code: Mapped[str] = mapped_column(ForeignKey("borough.code"))
    provider_code: Mapped[str] = mapped_column(ForeignKey("probation_area.code"))
    # The PDU's single point of contact for transfers in (the National PDU locator's answer).
    transfer_spoc: Mapped[bool] = mapped_column(default=False)
    end_date: Mapped[date | None]


class Staff(Base):
    __tablename__ = "staff"
    code: Mapped[str] = mapped_column(String(7), primary_key=True)
    forename: Mapped[str]
    surname: Mapped[str]
    end_date: Mapped[date | None]

    @property
    def unallocated(self) -> bool:
        return self.code.endswith("U")


class StaffTeam(Base):
    __tablename__ = "staff_team"
    staff_code: Mapped[str] = mapped_column(ForeignKey("staff.code"), primary_key=True)
    team_code: Mapped[str] = mapped_column(ForeignKey("team.code"), primary_key=True)


# --- People on probation ---------------------------------------------------------------------
class Offender(Base):
    __tablename__ = "offender"
    offender_id: Mapped[int] = mapped_column(primary_key=True)
    crn: Mapped[str] = mapped_column(String(7), unique=True)
    noms_number: Mapped[str | None]
    forename: Mapped[str]
    middle_name: Mapped[str | None]
    surname: Mapped[str]
    date_of_birth: Mapped[date]
    gender_code: Mapped[str]
    pnc_number: Mapped[str | None]
    rosh_level: Mapped[str | None]
    mappa_category: Mapped[str | None]
    mappa_level: Mapped[str | None]
    created_datetime: Mapped[datetime]
    managers: Mapped[list["OffenderManager"]] = relationship(
        order_by="OffenderManager.offender_manager_id", lazy="selectin")


class OffenderManager(Base):
    """One row per allocation; exactly one active (no end date) at a time."""

    __tablename__ = "offender_manager"
    offender_manager_id: Mapped[int] = mapped_column(primary_key=True)
    offender_id: Mapped[int] = mapped_column(ForeignKey("offender.offender_id"), index=True)
    provider_code: Mapped[str] = mapped_column(ForeignKey("probation_area.code"))
    team_code: Mapped[str] = mapped_column(ForeignKey("team.code"))
    staff_code: Mapped[str] = mapped_column(ForeignKey("staff.code"))
    allocation_date: Mapped[datetime]
    allocation_reason: Mapped[str]
    end_date: Mapped[datetime | None]
    active_flag: Mapped[bool] = mapped_column(default=True)


class Contact(Base):
    """One entry of the person's contact log; `alert_active` puts it on the alert list of
    the staff member it is for until someone clears it."""

    __tablename__ = "contact"
    __table_args__ = (Index("ix_contact_external_reference", "external_reference",
                            unique=True),)
    contact_id: Mapped[int] = mapped_column(primary_key=True)
    offender_id: Mapped[int] = mapped_column(ForeignKey("offender.offender_id"), index=True)
    nsi_id: Mapped[int | None] = mapped_column(ForeignKey("nsi.nsi_id"), index=True)
    contact_type: Mapped[str]
    contact_date: Mapped[datetime]
    notes: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None]
    provider_code: Mapped[str | None] = mapped_column(ForeignKey("probation_area.code"))
    team_code: Mapped[str | None] = mapped_column(ForeignKey("team.code"))
    staff_code: Mapped[str | None] = mapped_column(ForeignKey("staff.code"))
    alert_active: Mapped[bool] = mapped_column(default=False)
    sensitive: Mapped[bool] = mapped_column(default=False)
    # An integration's own id of the contact (e.g. `urn:hmpps:interventions-appointment:…`).
    external_reference: Mapped[str | None] = mapped_column(String(100))
    created_by: Mapped[str]
    row_version: Mapped[int] = mapped_column(default=1)


# --- NSIs ------------------------------------------------------------------------------------
class Nsi(Base):
    __tablename__ = "nsi"
    __table_args__ = (Index("ix_nsi_external_reference", "external_reference", unique=True),)
    nsi_id: Mapped[int] = mapped_column(primary_key=True)
    offender_id: Mapped[int] = mapped_column(ForeignKey("offender.offender_id"), index=True)
    nsi_type: Mapped[str]
    nsi_sub_type: Mapped[str | None]
    nsi_status: Mapped[str]
    nsi_status_date: Mapped[datetime]
    referral_date: Mapped[date]
    expected_start_date: Mapped[date | None]
    expected_end_date: Mapped[date | None]
    actual_start_date: Mapped[date | None]
    actual_end_date: Mapped[date | None]
    nsi_outcome: Mapped[str | None]
    notes: Mapped[str | None] = mapped_column(Text)
    intended_provider: Mapped[str] = mapped_column(ForeignKey("probation_area.code"))
    # The provider that raised the NSI and holds the case while it is open.
    raised_by_provider: Mapped[str] = mapped_column(ForeignKey("probation_area.code"))
    external_reference: Mapped[str | None] = mapped_column(String(100))
    address_assessment_due_date: Mapped[date | None]
    pending_transfer: Mapped[bool] = mapped_column(default=False)
    active_flag: Mapped[bool] = mapped_column(default=True)
    soft_deleted: Mapped[bool] = mapped_column(default=False)
    row_version: Mapped[int] = mapped_column(default=1)
    created_by: Mapped[str]
    created_datetime: Mapped[datetime]
    last_updated_by: Mapped[str]
    last_updated_datetime: Mapped[datetime]

    offender: Mapped[Offender] = relationship(lazy="joined")
    managers: Mapped[list["NsiManager"]] = relationship(order_by="NsiManager.nsi_manager_id",
                                                        lazy="selectin")
    history: Mapped[list["NsiStatusHistory"]] = relationship(
        order_by="NsiStatusHistory.nsi_status_history_id", lazy="selectin")
    transfer_form: Mapped["TransferForm | None"] = relationship(lazy="selectin")
    actions: Mapped[list["NsiAction"]] = relationship(order_by="NsiAction.action_id",
                                                      lazy="selectin")


class NsiManager(Base):
    __tablename__ = "nsi_manager"
    nsi_manager_id: Mapped[int] = mapped_column(primary_key=True)
    nsi_id: Mapped[int] = mapped_column(ForeignKey("nsi.nsi_id"), index=True)
    provider_code: Mapped[str] = mapped_column(ForeignKey("probation_area.code"))
    team_code: Mapped[str] = mapped_column(ForeignKey("team.code"))
    staff_code: Mapped[str] = mapped_column(ForeignKey("staff.code"))
    start_date: Mapped[datetime]
    end_date: Mapped[datetime | None]
    active_flag: Mapped[bool] = mapped_column(default=True)


class NsiStatusHistory(Base):
    __tablename__ = "nsi_status_history"
    nsi_status_history_id: Mapped[int] = mapped_column(primary_key=True)
    nsi_id: Mapped[int] = mapped_column(ForeignKey("nsi.nsi_id"), index=True)
    nsi_status: Mapped[str]
    nsi_status_date: Mapped[datetime]
    nsi_outcome: Mapped[str | None]
    notes: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str]


class TransferForm(Base):
    """The slimmed-down transfer form attached to a transfer or temporary-move NSI."""

    __tablename__ = "transfer_form"
    nsi_id: Mapped[int] = mapped_column(ForeignKey("nsi.nsi_id"), primary_key=True)
    current_provider: Mapped[str]
    current_pdu: Mapped[str]
    current_team: Mapped[str]
    receiving_provider: Mapped[str]
    receiving_pdu: Mapped[str]
    receiving_team: Mapped[str | None]
    reason: Mapped[str]
    reason_details: Mapped[str | None] = mapped_column(Text)
    proposed_address: Mapped[dict[str, Any] | None]
    sentence_type: Mapped[str]
    rosh_level: Mapped[str]
    mappa_category: Mapped[str | None]
    mappa_level: Mapped[str | None]
    victim_contact: Mapped[bool]
    victim_contact_details: Mapped[str | None] = mapped_column(Text)
    outstanding_actions: Mapped[str | None] = mapped_column(Text)
    move_start_date: Mapped[date | None]
    move_end_date: Mapped[date | None]


class NsiAction(Base):
    """One item of the action list attached to a transfer NSI."""

    __tablename__ = "nsi_action"
    action_id: Mapped[int] = mapped_column(primary_key=True)
    nsi_id: Mapped[int] = mapped_column(ForeignKey("nsi.nsi_id"), index=True)
    description: Mapped[str]
    owner: Mapped[str]
    due_date: Mapped[date | None]
    completed_date: Mapped[date | None]


# --- Outbox / feed ---------------------------------------------------------------------------
class DomainEvent(Base):
    """The domain_event outbox (§6.3); kept, not deleted, so it doubles as a pollable feed."""

    __tablename__ = "domain_event"
    __table_args__ = {"sqlite_autoincrement": True}
    domain_event_id: Mapped[int] = mapped_column(primary_key=True)
    event_type: Mapped[str] = mapped_column(index=True)
    message_body: Mapped[dict[str, Any]]
