"""Tables of the negotiated standard: proposals to change a profile, their comments and endorsements,
and the profile versions adopted here when a proposal is accepted."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.records import utcnow
from orchestrator.store.models import Base

PROPOSAL_STATES = ("open", "accepted", "superseded")


class ProfileProposal(Base):
    """A new version of one profile, proposed with a reason; accepted, it becomes that profile."""

    __tablename__ = "profile_proposals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(64), index=True)
    jurisdiction: Mapped[str] = mapped_column(String(8))
    base_version: Mapped[str] = mapped_column(String(32), doc="Version in force when it was proposed.")
    version: Mapped[str] = mapped_column(String(32))
    base_document: Mapped[str] = mapped_column(Text, doc="The profile file in force when it was proposed.")
    document: Mapped[str] = mapped_column(Text, doc="The proposed profile file, exactly as proposed.")
    digest: Mapped[str] = mapped_column(String(64), doc="sha256 of the resolved proposed profile chain.")
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    proposed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    proposed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The re-assessment of the stored trials under the proposal, as computed when it was proposed.
    reassessment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    accepted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class ProposalComment(Base):
    __tablename__ = "proposal_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("profile_proposals.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ProposalEndorsement(Base):
    __tablename__ = "proposal_endorsements"
    __table_args__ = (UniqueConstraint("proposal_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("profile_proposals.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    jurisdiction: Mapped[str] = mapped_column(String(8))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AdoptedProfile(Base):
    """A profile version put in force here by an accepted proposal (the history of the standard)."""

    __tablename__ = "adopted_profiles"
    __table_args__ = (UniqueConstraint("profile_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(32))
    document: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    proposal_id: Mapped[int] = mapped_column(ForeignKey("profile_proposals.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
