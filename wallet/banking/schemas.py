"""Fee quotes and webhook acknowledgements as the API shows them."""

from pydantic import BaseModel, Field

from wallet.banking.models import EventOutcome
from wallet.banking.service import Rail


class FeeQuoteOut(BaseModel):
    """What moving `amount` costs on `rail`: a pay-in credits `net_amount`; a payout takes
    `amount + fee` from the wallet."""

    rail: Rail
    asset: str
    amount: str = Field(examples=["100.00"])
    fee: str = Field(examples=["0.75"])
    net_amount: str = Field(examples=["99.25"])


class WebhookReceipt(BaseModel):
    """`duplicate`: this event id was received before and is not applied again."""

    event_id: str
    duplicate: bool
    outcome: EventOutcome | None = None


class WebhookReceipts(BaseModel):
    """One receipt per event of the delivery, in its order."""

    events: list[WebhookReceipt]
