"""People on the platform (administrators only): create administrators, developers and regulators."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from orchestrator.api import auth
from orchestrator.api.access import require
from orchestrator.api.deps import CurrentUser, DbSession
from orchestrator.store import User

router = APIRouter(prefix="/api/users", tags=["users"])

Username = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$", description="Sign-in name.")]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: str = Field(min_length=12, max_length=256, description="At least 12 characters.")
    role: Literal["admin", "developer", "regulator"]
    sponsor: str | None = Field(
        default=None, pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="A developer's sponsor (slug)."
    )
    jurisdiction: str | None = Field(
        default=None, pattern=r"^[A-Z]{2}$", description="A regulator's jurisdiction code, e.g. SG."
    )

    @model_validator(mode="after")
    def _affiliation(self) -> UserCreate:
        # Each role acts for exactly what it needs: a sponsor, a jurisdiction, or neither.
        wanted = {"admin": (False, False), "developer": (True, False), "regulator": (False, True)}[self.role]
        if (self.sponsor is not None, self.jurisdiction is not None) != wanted:
            raise ValueError(
                "a developer names a sponsor, a regulator a jurisdiction, an administrator neither"
            )
        return self


class UserPublic(BaseModel):
    id: int
    username: str
    role: str
    sponsor: str | None
    jurisdiction: str | None
    active: bool
    created_at: dt.datetime

    @classmethod
    def of(cls, user: User) -> UserPublic:
        return cls(
            id=user.id,
            username=user.username,
            role=user.role,
            sponsor=user.sponsor,
            jurisdiction=user.jurisdiction,
            active=user.active,
            created_at=user.created_at,
        )


@router.post("", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, user: CurrentUser, db: DbSession) -> UserPublic:
    require(db, user, "user_create", f"user:{body.username}", "admin")
    created = auth.create_user(
        db, user.username, body.username, body.password, body.role, body.sponsor, body.jurisdiction
    )
    return UserPublic.of(created)


@router.get("", response_model=list[UserPublic])
def list_users(user: CurrentUser, db: DbSession) -> list[UserPublic]:
    require(db, user, "user_list", "users", "admin")
    return [UserPublic.of(u) for u in db.scalars(select(User).order_by(User.id))]
