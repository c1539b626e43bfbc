"""`FakeChain` answers a step as `ChainFollower` does over a node serving that chain."""

from chains import AddressSet, Advance, FakeChain, Rollback, next_window

TOKEN = "0x" + "70" * 20
WATCHED = "0x" + "aa" * 20
OTHER = "0x" + "bb" * 20


def test_a_step_scans_the_blocks_after_the_window_for_watched_addresses_only() -> None:
    chain = FakeChain(tokens={TOKEN: "USDC"})
    first = chain.step([], AddressSet([WATCHED]))
    eth = chain.pay(WATCHED, 5)
    chain.pay(OTHER, 6, token=TOKEN)
    usdc = chain.pay(WATCHED.upper().replace("0X", "0x"), 7, token=TOKEN)
    chain.mine(3)

    step = chain.step(next_window([], first, 10), AddressSet([WATCHED]), max_blocks=2)

    assert isinstance(step, Advance)
    assert step.head == 3
    assert [b.header.number for b in step.blocks] == [1, 2]
    assert step.blocks[0].header.parent_hash == chain.header(0).hash
    (native,) = step.blocks[0].native_transfers
    (token,) = step.blocks[0].token_transfers
    assert (native.tx_hash, native.index, native.amount) == (eth, -1, 5)
    assert (token.tx_hash, token.log_index, token.asset, token.amount) == (usdc, 1, "USDC", 7)


def test_a_reorg_rolls_back_to_the_newest_canonical_header_or_to_none() -> None:
    chain = FakeChain()
    chain.mine(5)
    watched = AddressSet()
    window = next_window([], chain.step([], watched), 3)  # blocks 3, 4, 5

    chain.reorg(2)
    assert chain.step(window, watched) == Advance((), 3)  # behind us, nothing replaced yet
    chain.mine(4)
    assert chain.step(window, watched) == Rollback(ancestor=window[0])

    chain.reorg(6)
    chain.mine(6)
    assert chain.step(window, watched) == Rollback(ancestor=None)


def test_a_re_mined_transfer_keeps_its_hash_in_a_new_block() -> None:
    chain = FakeChain()
    tx = chain.pay(WATCHED, 9)
    old = chain.mine()
    old_hash = chain.header(old).hash

    chain.reorg(1, remine=True)
    new = chain.mine()

    step = chain.step([], AddressSet([WATCHED]))
    assert isinstance(step, Advance)
    (transfer,) = step.blocks[new].native_transfers
    assert (transfer.tx_hash, transfer.block_number) == (tx, old)
    assert transfer.block_hash != old_hash
