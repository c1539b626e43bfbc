"""Fee quotes: one node call shared by a chain's requests for a while, or one per request."""

from chains import FeePolicy
from wallet.assets.service import Catalogue
from wallet.withdrawals.service import NodeFeeQuoter

POLICY = FeePolicy(max_fee_per_gas_cap=500 * 10**9)


def test_a_quote_is_shared_for_its_max_age(devnet_catalogue: Catalogue) -> None:
    chain = devnet_catalogue.chain("devnet")
    shared, each = NodeFeeQuoter(POLICY, max_age=3600.0), NodeFeeQuoter(POLICY)
    try:
        assert shared.cached(chain) is None
        first = shared(chain)
        assert shared.cached(chain) is first
        assert shared(chain) is first

        quote = each(chain)
        assert each.cached(chain) is None
        assert each(chain) is not quote
    finally:
        shared.close()
        each.close()
