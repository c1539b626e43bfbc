"""Creating and finding tenants."""

from sqlalchemy.orm import Session

from wallet.ids import new_id
from wallet.tenants import repository
from wallet.tenants.models import Tenant


def create_tenant(session: Session, name: str) -> Tenant:
    tenant = Tenant(id=new_id("ten"), name=name)
    session.add(tenant)
    session.flush()
    return tenant


def tenant_by_name(session: Session, name: str) -> Tenant | None:
    return repository.tenant_by_name(session, name)
