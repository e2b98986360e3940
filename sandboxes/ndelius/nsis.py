"""Case-transfer and temporary-move NSIs: raise, route, change status, complete.

Workflow (codes.py): an NSI is raised `REQ` by the sending practitioner with its transfer
form and action list. Raised towards this instance's own provider, its NSI manager is the
receiving PDU's case-transfer SPOC (or the named receiving team), and the address assessment
falls due 10 working days from receipt; raised towards another provider, the sender keeps it
until the gateway carries it over. Completing a case transfer (`COMP`, outcome `TRFC`) is the
one moment the person's offender manager moves to the receiving provider — never before;
a temporary move never moves the manager.
"""

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandboxes.ndelius import codes
from sandboxes.ndelius.errors import Conflict, NotFound, Unprocessable
from sandboxes.ndelius.events import raise_event
from sandboxes.ndelius.models import Nsi, NsiAction, NsiManager, NsiStatusHistory, TransferForm
from sandboxes.ndelius.organisation import (
    Context,
    Manager,
    active_team,
    checked_code,
    manager_json,
    pair,
    pdu,
    provider,
    resolve_manager,
    spoc_team,
    staff_in_team,
)
from sandboxes.ndelius.people import add_contact, current_manager, find_person, move_manager
from sandboxes.ndelius.people import spring_page as _page
from sandboxes.ndelius.schemas import (
    ActionUpdate,
    ManagerRef,
    NewAction,
    NewNsi,
    NewTransferForm,
    NsiPatch,
    StatusChange,
)
from sandboxes.ndelius.store import add_working_days, iso, london, now

TRANSFER_DEADLINE_WORKING_DAYS = 20
ADDRESS_ASSESSMENT_WORKING_DAYS = 10
COMPLETION_OUTCOMES = codes.SUCCESS_OUTCOMES


def find_nsi(session: Session, nsi_id: int) -> Nsi:
    found = session.get(Nsi, nsi_id)
    if found is None or found.soft_deleted:
        raise NotFound("NSI", "id", nsi_id)
    return found


def active_nsi_manager(nsi: Nsi) -> NsiManager:
    return next(m for m in nsi.managers if m.active_flag)


def create_nsi(ctx: Context, body: NewNsi) -> Nsi:
    """Raise a case-transfer or temporary-move NSI with its transfer form and action list."""
    session = ctx.session
    nsi_type = checked_code(body.type, codes.NSI_TYPES, "NSI type")
    assert nsi_type is not None
    sub_types = codes.NSI_SUB_TYPES[nsi_type]
    checked_code(body.sub_type, sub_types, "NSI sub-type")
    status = body.status or codes.INITIAL_STATUS
    if status != codes.INITIAL_STATUS:
        raise Unprocessable(f"A new NSI starts in status {codes.INITIAL_STATUS}",
                            error_code="INVALID_INITIAL_STATUS")
    if body.external_reference is not None:
        existing = session.scalar(select(Nsi.nsi_id).where(
            Nsi.external_reference == body.external_reference))
        if existing is not None:
            raise Conflict(f"NSI {existing} already has this external reference",
                           error_code="DUPLICATE_EXTERNAL_REFERENCE")
    person = find_person(session, body.offender_crn)
    intended = provider(session, body.intended_provider).code
    sender = current_manager(person)
    if body.transfer_form.crn not in (None, person.crn):
        raise Unprocessable("The transfer form is about another person",
                            error_code="FORM_CRN_MISMATCH")
    form = _transfer_form(session, body.transfer_form, nsi_type=nsi_type, sender=sender,
                          intended_provider=intended)

    today = now().date()
    referral_date = body.referral_date or today
    received_here = intended == ctx.provider
    if body.manager is not None:
        manager = resolve_manager(session, team=body.manager.team, staff=body.manager.staff,
                                  provider_code=body.manager.provider)
    elif received_here:
        team = (active_team(session, form.receiving_team) if form.receiving_team
                else spoc_team(session, form.receiving_pdu))
        manager = Manager(team.provider_code, team.code, staff_in_team(session, team, None).code)
    else:
        manager = sender
    sub_type = body.sub_type
    if sub_type is None and nsi_type == codes.CASE_TRANSFER:
        sub_type = "TRF01A" if intended != sender.provider else "TRF01B"
    moment = now()
    assessment_due = (add_working_days(today, ADDRESS_ASSESSMENT_WORKING_DAYS)
                      if received_here else None)
    nsi = Nsi(
        offender=person, nsi_type=nsi_type, nsi_sub_type=sub_type, nsi_status=status,
        nsi_status_date=london(body.status_date) or moment, referral_date=referral_date,
        expected_start_date=body.expected_start_date or form.move_start_date,
        expected_end_date=body.expected_end_date or (
            form.move_end_date if nsi_type == codes.TEMPORARY_MOVE and form.move_end_date
            else add_working_days(referral_date, TRANSFER_DEADLINE_WORKING_DAYS)),
        actual_start_date=None, actual_end_date=None, nsi_outcome=None, notes=body.notes,
        intended_provider=intended, raised_by_provider=sender.provider,
        external_reference=body.external_reference,
        address_assessment_due_date=assessment_due,
        pending_transfer=nsi_type == codes.CASE_TRANSFER, active_flag=True, soft_deleted=False,
        row_version=1, created_by=ctx.user, created_datetime=moment, last_updated_by=ctx.user,
        last_updated_datetime=moment, transfer_form=form)
    nsi.managers.append(NsiManager(provider_code=manager.provider, team_code=manager.team,
                                   staff_code=manager.staff, start_date=moment, end_date=None,
                                   active_flag=True))
    nsi.history.append(NsiStatusHistory(nsi_status=status, nsi_status_date=nsi.nsi_status_date,
                                        nsi_outcome=None, notes=body.notes, created_by=ctx.user))
    actions = body.actions if body.actions is not None else _default_actions(
        nsi_type, today, assessment_due)
    nsi.actions.extend(NsiAction(description=a.description, owner=a.owner, due_date=a.due_date,
                                 completed_date=None) for a in actions)
    session.add(nsi)
    session.flush()
    add_contact(ctx, person, codes.STATUS_CONTACT_TYPES[status].code, notes=body.notes,
                nsi_id=nsi.nsi_id)
    raise_event(ctx, event_type=codes.NSI_CREATED,
                description=f"A {codes.NSI_TYPES[nsi_type].description} NSI has been raised",
                person=person, detail_path=f"/nsi/{nsi.nsi_id}",
                additional=_event_info(ctx, nsi, statusHistoryId=nsi.history[-1]
                                       .nsi_status_history_id))
    return nsi


def _transfer_form(session: Session, body: NewTransferForm, *, nsi_type: str, sender: Manager,
                   intended_provider: str) -> TransferForm:
    current_team = active_team(session, body.current_team) if body.current_team else None
    current_pdu = pdu(session, body.current_pdu or (
        current_team.pdu_code if current_team else active_team(session, sender.team).pdu_code))
    receiving_pdu = pdu(session, body.receiving_pdu)
    if receiving_pdu.provider_code != intended_provider:
        raise Unprocessable(f"PDU {receiving_pdu.code} does not belong to provider "
                            f"{intended_provider}", error_code="PDU_NOT_IN_PROVIDER")
    if body.receiving_team is not None:
        receiving_team = active_team(session, body.receiving_team)
        if receiving_team.pdu_code != receiving_pdu.code:
            raise Unprocessable(f"Team {receiving_team.code} is not in PDU {receiving_pdu.code}",
                                error_code="TEAM_NOT_IN_PDU")
    if receiving_pdu.code == current_pdu.code and nsi_type == codes.CASE_TRANSFER:
        raise Unprocessable("A case transfer needs a receiving PDU other than the current one",
                            error_code="SAME_PDU")
    checked_code(body.reason, codes.TRANSFER_REASONS, "Transfer reason")
    checked_code(body.sentence_type, codes.SENTENCE_TYPES, "Sentence type")
    checked_code(body.rosh_level, codes.ROSH_LEVELS, "RoSH level")
    if body.mappa:
        checked_code(body.mappa.category, codes.MAPPA_CATEGORIES, "MAPPA category")
        checked_code(body.mappa.level, codes.MAPPA_LEVELS, "MAPPA level")
    if body.move_start_date and body.move_end_date and body.move_end_date < body.move_start_date:
        raise Unprocessable("The move ends before it starts", error_code="INVALID_DATES")
    return TransferForm(
        current_provider=current_pdu.provider_code, current_pdu=current_pdu.code,
        current_team=current_team.code if current_team else sender.team,
        receiving_provider=receiving_pdu.provider_code, receiving_pdu=receiving_pdu.code,
        receiving_team=body.receiving_team, reason=body.reason,
        reason_details=body.reason_details,
        proposed_address=body.proposed_address.model_dump(by_alias=True, exclude_none=True)
        if body.proposed_address else None,
        sentence_type=body.sentence_type, rosh_level=body.rosh_level,
        mappa_category=body.mappa.category if body.mappa else None,
        mappa_level=body.mappa.level if body.mappa else None,
        victim_contact=body.victim_contact, victim_contact_details=body.victim_contact_details,
        outstanding_actions=body.outstanding_actions, move_start_date=body.move_start_date,
        move_end_date=body.move_end_date)


def _default_actions(nsi_type: str, today: date, assessment_due: date | None) -> list[NewAction]:
    """The action list a new transfer NSI starts with (GUESS, after the SPO guidance)."""
    due = assessment_due or add_working_days(today, ADDRESS_ASSESSMENT_WORKING_DAYS)
    actions = [
        NewAction(description="Allocate the NSI to a probation practitioner for review",
                  owner="RECEIVING", dueDate=add_working_days(today, 2)),
        NewAction(description="Complete the address assessment", owner="RECEIVING",
                  dueDate=due),
        NewAction(description="Share all risk information and victim contact details",
                  owner="SENDING", dueDate=add_working_days(today, 2)),
    ]
    if nsi_type == codes.CASE_TRANSFER:
        actions.append(NewAction(description="Hold the handover with the receiving practitioner",
                                 owner="SENDING", dueDate=None))
    return actions


def change_status(ctx: Context, nsi_id: int, body: StatusChange) -> Nsi:
    """Move an NSI along the workflow; the same status again changes nothing."""
    session = ctx.session
    nsi = find_nsi(session, nsi_id)
    status = checked_code(body.status, codes.NSI_STATUSES, "NSI status")
    assert status is not None
    if body.row_version is not None and body.row_version != nsi.row_version:
        raise Conflict("The NSI was changed by someone else; read it again",
                       error_code="STALE_ROW_VERSION")
    outcome = body.outcome
    if status == codes.COMPLETED and outcome is None:
        outcome = COMPLETION_OUTCOMES[nsi.nsi_type]
    if status == nsi.nsi_status and outcome in (None, nsi.nsi_outcome):
        return nsi  # a repeated request
    allowed = codes.NEXT_STATUSES[nsi.nsi_status]
    if status not in allowed or (status in codes.CASE_TRANSFER_ONLY
                                 and nsi.nsi_type != codes.CASE_TRANSFER):
        raise Conflict(f"NSI status cannot change from {nsi.nsi_status} to {status}",
                       error_code="INVALID_STATUS_TRANSITION")
    checked_code(outcome, codes.NSI_OUTCOMES, "NSI outcome")
    if status in codes.OUTCOME_REQUIRED and outcome is None:
        raise Unprocessable(f"Status {status} needs an outcome", error_code="OUTCOME_REQUIRED")
    succeeded = status == codes.COMPLETED and outcome == COMPLETION_OUTCOMES[nsi.nsi_type]
    fitting = (frozenset({COMPLETION_OUTCOMES[nsi.nsi_type]}) | codes.REJECTION_OUTCOMES
               if status == codes.COMPLETED
               else codes.OUTCOMES_FOR_STATUS.get(status, frozenset()))
    if outcome is not None and outcome not in fitting:
        raise Unprocessable(f"Outcome {outcome} does not fit status {status}",
                            error_code="OUTCOME_MISMATCH")
    if succeeded and nsi.nsi_status in (codes.REQUESTED, codes.AWAITING_ALLOCATION):
        raise Conflict(f"NSI status cannot change from {nsi.nsi_status} to {status} "
                       f"with outcome {outcome}", error_code="INVALID_STATUS_TRANSITION")
    # A transfer closed with a rejection outcome leaves the person where they are.
    completes_transfer = succeeded and nsi.nsi_type == codes.CASE_TRANSFER
    if body.manager is not None and not completes_transfer:
        raise Unprocessable("A new manager is given only when completing a case transfer",
                            error_code="UNEXPECTED_MANAGER")

    previous, moment, today = nsi.nsi_status, now(), now().date()
    if completes_transfer:
        _move_to_receiving_area(ctx, nsi, body.manager)
    nsi.nsi_status, nsi.nsi_outcome = status, outcome
    nsi.nsi_status_date = london(body.status_date) or moment
    if status == codes.IN_PROGRESS and nsi.actual_start_date is None:
        nsi.actual_start_date = today
    if status in codes.TERMINAL_STATUSES:
        nsi.actual_end_date, nsi.active_flag, nsi.pending_transfer = today, False, False
    nsi.row_version += 1
    nsi.last_updated_by, nsi.last_updated_datetime = ctx.user, moment
    nsi.history.append(NsiStatusHistory(nsi_status=status, nsi_status_date=nsi.nsi_status_date,
                                        nsi_outcome=outcome, notes=body.notes,
                                        created_by=ctx.user))
    session.flush()
    add_contact(ctx, nsi.offender, codes.STATUS_CONTACT_TYPES[status].code, notes=body.notes,
                nsi_id=nsi.nsi_id)
    raise_event(ctx, event_type=codes.NSI_STATUS_CHANGED,
                description=f"NSI status changed to {codes.NSI_STATUSES[status].description}",
                person=nsi.offender, detail_path=f"/nsi/{nsi.nsi_id}",
                additional=_event_info(ctx, nsi, previousStatus=previous,
                                       statusHistoryId=nsi.history[-1].nsi_status_history_id))
    return nsi


def _move_to_receiving_area(ctx: Context, nsi: Nsi, named: ManagerRef | None) -> None:
    """Hand the person to the receiving area: the named manager, else the NSI's receiving
    manager, else the receiving team (or PDU SPOC) with its unallocated staff."""
    session, form = ctx.session, nsi.transfer_form
    assert form is not None
    nsi_manager = active_nsi_manager(nsi)
    if named is not None:
        new = resolve_manager(session, team=named.team, staff=named.staff,
                              provider_code=named.provider)
    elif nsi_manager.provider_code == nsi.intended_provider:
        new = Manager(nsi_manager.provider_code, nsi_manager.team_code, nsi_manager.staff_code)
    else:
        team = (active_team(session, form.receiving_team) if form.receiving_team
                else spoc_team(session, form.receiving_pdu))
        new = Manager(team.provider_code, team.code, staff_in_team(session, team, None).code)
    if new.provider != nsi.intended_provider:
        raise Unprocessable(f"The new manager must belong to provider {nsi.intended_provider}",
                            error_code="MANAGER_NOT_IN_RECEIVING_PROVIDER")
    move_manager(ctx, nsi.offender, new, reason="TRF", nsi_id=nsi.nsi_id)


def allocate_nsi(ctx: Context, nsi_id: int, body: ManagerRef) -> Nsi:
    """The receiving SPO allocates the NSI to a practitioner (within the NSI's provider)."""
    nsi = find_nsi(ctx.session, nsi_id)
    new = resolve_manager(ctx.session, team=body.team, staff=body.staff,
                          provider_code=body.provider)
    old = active_nsi_manager(nsi)
    if old.team_code == new.team and old.staff_code == new.staff:
        return nsi
    if old.provider_code != new.provider:
        raise Conflict(f"Cannot move the NSI from provider {old.provider_code} to "
                       f"{new.provider}", error_code="CROSS_PROVIDER_ALLOCATION")
    moment = now()
    old.end_date, old.active_flag = moment, False
    nsi.managers.append(NsiManager(provider_code=new.provider, team_code=new.team,
                                   staff_code=new.staff, start_date=moment, end_date=None,
                                   active_flag=True))
    nsi.row_version += 1
    nsi.last_updated_by, nsi.last_updated_datetime = ctx.user, moment
    ctx.session.flush()
    raise_event(ctx, event_type=codes.NSI_MANAGER_CHANGED,
                description="The NSI has been allocated to a practitioner", person=nsi.offender,
                detail_path=f"/nsi/{nsi.nsi_id}",
                additional=_event_info(ctx, nsi, team=new.team, staff=new.staff))
    return nsi


def patch_nsi(ctx: Context, nsi_id: int, body: NsiPatch) -> Nsi:
    """Set the external reference once (an integration's own id) or add to the notes."""
    nsi = find_nsi(ctx.session, nsi_id)
    reference = body.external_reference
    if reference is not None and reference != nsi.external_reference:
        if nsi.external_reference is not None:
            raise Conflict("The NSI already has another external reference",
                           error_code="EXTERNAL_REFERENCE_SET")
        if ctx.session.scalar(select(Nsi.nsi_id).where(Nsi.external_reference == reference)):
            raise Conflict("Another NSI already has this external reference",
                           error_code="DUPLICATE_EXTERNAL_REFERENCE")
        nsi.external_reference = reference
    if body.notes:
        nsi.notes = f"{nsi.notes}\n{body.notes}" if nsi.notes else body.notes
    nsi.row_version += 1
    nsi.last_updated_by, nsi.last_updated_datetime = ctx.user, now()
    return nsi


def add_action(ctx: Context, nsi_id: int, body: NewAction) -> Nsi:
    nsi = find_nsi(ctx.session, nsi_id)
    nsi.actions.append(NsiAction(description=body.description, owner=body.owner,
                                 due_date=body.due_date, completed_date=None))
    nsi.last_updated_by, nsi.last_updated_datetime = ctx.user, now()
    return nsi


def update_action(ctx: Context, nsi_id: int, action_id: int, body: ActionUpdate) -> Nsi:
    nsi = find_nsi(ctx.session, nsi_id)
    action = next((a for a in nsi.actions if a.action_id == action_id), None)
    if action is None:
        raise NotFound("Action", "id", action_id)
    action.completed_date = body.completed_date
    nsi.last_updated_by, nsi.last_updated_datetime = ctx.user, now()
    return nsi


def search(session: Session, *, external_reference: str | None, crn: str | None,
           nsi_type: str | None, status: str | None, intended_provider: str | None,
           page: int, size: int) -> dict[str, Any]:
    """NSIs matching every filter given, oldest first, as a Spring page."""
    query = select(Nsi).where(Nsi.soft_deleted.is_(False))
    if external_reference is not None:
        query = query.where(Nsi.external_reference == external_reference)
    if crn is not None:
        query = query.where(Nsi.offender_id == find_person(session, crn).offender_id)
    if nsi_type is not None:
        query = query.where(Nsi.nsi_type == nsi_type)
    if status is not None:
        query = query.where(Nsi.nsi_status == status)
    if intended_provider is not None:
        query = query.where(Nsi.intended_provider == intended_provider)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Nsi.nsi_id).offset(page * size).limit(size))
    return _page([nsi_json(session, n) for n in rows], page=page, size=size, total=total)


def _event_info(ctx: Context, nsi: Nsi, **extra: Any) -> dict[str, Any]:
    """additionalInformation of an NSI event: ids and codes only, never free text."""
    return {"nsiId": nsi.nsi_id, "nsiType": nsi.nsi_type, "nsiSubType": nsi.nsi_sub_type,
            "nsiStatus": nsi.nsi_status, "nsiOutcome": nsi.nsi_outcome,
            "raisedByProvider": nsi.raised_by_provider,
            "intendedProvider": nsi.intended_provider,
            "externalReference": nsi.external_reference, "updatedBy": ctx.user,
            "clientId": ctx.client_id, **extra}


def nsi_json(session: Session, nsi: Nsi) -> dict[str, Any]:
    """An NSI as the HMPPS APIs answer it (§3.2): `id`, `nsiType`/`nsiSubType`/`nsiStatus`/
    `nsiOutcome` as `{code, description}` pairs, managers as provider/team/staff pairs."""
    active = active_nsi_manager(nsi)
    form = nsi.transfer_form
    return {
        "id": nsi.nsi_id,
        "nsiType": pair(nsi.nsi_type, codes.NSI_TYPES),
        "nsiSubType": pair(nsi.nsi_sub_type, codes.NSI_SUB_TYPES.get(nsi.nsi_type, {})),
        "offenderCrn": nsi.offender.crn,
        "referralDate": _day(nsi.referral_date),
        "expectedStartDate": _day(nsi.expected_start_date),
        "expectedEndDate": _day(nsi.expected_end_date),
        "actualStartDate": _day(nsi.actual_start_date),
        "actualEndDate": _day(nsi.actual_end_date),
        "nsiStatus": pair(nsi.nsi_status, codes.NSI_STATUSES),
        "statusDateTime": iso(nsi.nsi_status_date),
        "nsiOutcome": pair(nsi.nsi_outcome, codes.NSI_OUTCOMES),
        "notes": nsi.notes,
        "intendedProvider": {"code": nsi.intended_provider,
                             "description": provider(session, nsi.intended_provider).description},
        "raisedByProvider": {"code": nsi.raised_by_provider,
                             "description": provider(session, nsi.raised_by_provider).description},
        "manager": manager_json(session, Manager(active.provider_code, active.team_code,
                                                 active.staff_code)),
        "nsiManagers": [{**manager_json(session, Manager(m.provider_code, m.team_code,
                                                         m.staff_code)),
                         "startDate": iso(m.start_date), "endDate": iso(m.end_date)}
                        for m in nsi.managers],
        "externalReference": nsi.external_reference,
        "addressAssessmentDueDate": _day(nsi.address_assessment_due_date),
        "pendingTransfer": nsi.pending_transfer,
        "active": nsi.active_flag,
        "rowVersion": nsi.row_version,
        "createdBy": nsi.created_by,
        "createdDateTime": iso(nsi.created_datetime),
        "lastUpdatedBy": nsi.last_updated_by,
        "lastUpdatedDateTime": iso(nsi.last_updated_datetime),
        "statusHistory": [{"id": h.nsi_status_history_id,
                           "status": pair(h.nsi_status, codes.NSI_STATUSES),
                           "statusDate": iso(h.nsi_status_date),
                           "outcome": pair(h.nsi_outcome, codes.NSI_OUTCOMES),
                           "notes": h.notes, "createdBy": h.created_by} for h in nsi.history],
        "transferForm": _form_json(form, nsi.offender.crn) if form else None,
        "actions": [{"id": a.action_id, "description": a.description, "owner": a.owner,
                     "dueDate": _day(a.due_date), "completedDate": _day(a.completed_date)}
                    for a in nsi.actions],
    }


def _form_json(form: TransferForm, crn: str) -> dict[str, Any]:
    return {
        "crn": crn,
        "currentProvider": form.current_provider,
        "currentPdu": form.current_pdu,
        "currentTeam": form.current_team,
        "receivingProvider": form.receiving_provider,
        "receivingPdu": form.receiving_pdu,
        "receivingTeam": form.receiving_team,
        "reason": pair(form.reason, codes.TRANSFER_REASONS),
        "reasonDetails": form.reason_details,
        "proposedAddress": form.proposed_address,
        "sentenceType": pair(form.sentence_type, codes.SENTENCE_TYPES),
        "roshLevel": pair(form.rosh_level, codes.ROSH_LEVELS),
        "mappa": {"category": pair(form.mappa_category, codes.MAPPA_CATEGORIES),
                  "level": pair(form.mappa_level, codes.MAPPA_LEVELS)}
        if form.mappa_category else None,
        "victimContact": form.victim_contact,
        "victimContactDetails": form.victim_contact_details,
        "outstandingActions": form.outstanding_actions,
        "moveStartDate": _day(form.move_start_date),
        "moveEndDate": _day(form.move_end_date),
    }


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None
