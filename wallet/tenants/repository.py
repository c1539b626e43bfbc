"""The tenants' queries."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from wallet.tenants.models import Tenant


def tenant_by_name(session: Session, name: str) -> Tenant | None:
    return session.scalars(select(Tenant).where(Tenant.name == name)).one_or_none()
