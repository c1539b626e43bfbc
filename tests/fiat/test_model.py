"""Statuses, net effects and the wire format of the port's values."""

from datetime import UTC, datetime

import pytest

from fiat import Payin, PayinStatus, PaymentKind, Payout, PayoutStatus, may_follow, net_effect
from fiat.sandbox import Options, Timings, parse_options
from fiat.wire import decode_payment, encode_payment

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_statuses_move_only_forward_within_their_kind() -> None:
    assert may_follow(PayinStatus.PROCESSING, PayinStatus.SUCCEEDED)
    assert may_follow(PayinStatus.SUCCEEDED, PayinStatus.CHARGED_BACK)
    assert may_follow(PayoutStatus.PAID, PayoutStatus.RETURNED)
    assert not may_follow(PayinStatus.SUCCEEDED, PayinStatus.PROCESSING)
    assert not may_follow(PayoutStatus.PENDING, PayoutStatus.PAID)
    assert not may_follow(PayoutStatus.FAILED, PayoutStatus.PAID)
    assert not may_follow(PayinStatus.PENDING, PayoutStatus.PROCESSING)


def test_only_a_succeeded_payin_or_a_paid_payout_moves_the_balance() -> None:
    assert net_effect(PaymentKind.PAYIN, PayinStatus.SUCCEEDED, 500) == 500
    assert net_effect(PaymentKind.PAYOUT, PayoutStatus.PAID, 500) == -500
    for status in ("pending", "processing", "failed", "returned", "charged_back"):
        assert net_effect(PaymentKind.PAYIN, status, 500) == 0
        assert net_effect(PaymentKind.PAYOUT, status, 500) == 0


@pytest.mark.parametrize(
    "payment",
    [
        Payin("pi_1", "k1", "ba_1", 1_013, "EUR", PayinStatus.FAILED, 3, NOW, NOW, "nsf"),
        Payout("po_1", "k2", "ba_1", 10**15, "USD", PayoutStatus.PAID, 3, NOW, NOW),
    ],
)
def test_payments_travel_unchanged(payment: Payin | Payout) -> None:
    assert decode_payment(encode_payment(payment)) == payment


@pytest.mark.parametrize("amount", [10.5, "1050", True, None])
def test_an_amount_is_only_ever_an_integer(amount: object) -> None:
    document = encode_payment(
        Payout("po_1", "k", "ba_1", 1, "USD", PayoutStatus.PAID, 1, NOW, NOW)
    ) | {"amount": amount}

    with pytest.raises(ValueError, match="amount"):
        decode_payment(document)


def test_a_malformed_document_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="malformed"):
        decode_payment({"object": "payin"})
    with pytest.raises(ValueError, match="JSON object"):
        decode_payment([])


def test_options_survive_the_command_line() -> None:
    options = Options(
        port=9999,
        api_keys=("sk_a", "sk_b"),
        webhook_url="http://127.0.0.1:1/hooks",
        webhook_secret="whsec_x",
        timings=Timings(processing=0.5, settle=1.5, returned=3.0, chargeback=4.0, auto_pay=0.1),
        tick=0.01,
    )

    assert parse_options(options.argv()) == options
    assert parse_options([]) == Options()
