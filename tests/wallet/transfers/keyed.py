"""Transfer requests under idempotency keys, as the API makes them."""

from tests.factories import Factory
from wallet.idempotency.service import IdempotencyKey
from wallet.transfers.service import KeyedTransfer, TransferRequest


def keyed(factory: Factory, source: str, destination: str, cents: int, key: str) -> KeyedTransfer:
    request = TransferRequest(factory.tenant_id, source, destination, "USD", cents)
    return KeyedTransfer(
        request, IdempotencyKey.for_request(factory.tenant_id, key, {"cents": cents})
    )
