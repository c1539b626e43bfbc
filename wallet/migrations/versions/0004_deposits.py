"""Crypto deposits: deposit addresses, deposits, and each chain's header window and cursor.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.execute(
        """
        -- One row per chain: the next BIP-44 address index to hand out. Allocating locks the
        -- row until the allocating transaction ends, so indexes are gap-free and become
        -- visible in index order (the watcher loads new addresses by index). The BIP-44
        -- account of the chain is recorded on first use and must never change.
        CREATE TABLE deposit_address_counters (
            chain text PRIMARY KEY,
            bip44_account integer NOT NULL CHECK (bip44_account >= 0),
            next_index integer NOT NULL CHECK (next_index >= 0)
        );

        -- Addresses are lowercase hex here; the API shows them EIP-55 checksummed.
        CREATE TABLE deposit_addresses (
            id text PRIMARY KEY,
            tenant_id text NOT NULL REFERENCES tenants,
            wallet_id text NOT NULL REFERENCES wallets,
            chain text NOT NULL REFERENCES deposit_address_counters,
            derivation_index integer NOT NULL CHECK (derivation_index >= 0),
            address text NOT NULL CHECK (address ~ '^0x[0-9a-f]{40}$'),
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (wallet_id, chain),
            UNIQUE (chain, derivation_index),
            UNIQUE (chain, address)
        );

        -- A transfer to a deposit address, keyed by its on-chain identity: log_index is the
        -- log's index for ERC-20 transfers, -1 for a transaction's own ETH value and -2, -3,
        -- ... for ETH sent by internal calls (chains.model.trace_index). The block is data.
        -- A credit's ledger transaction carries the external reference of kind 'deposit'
        -- naming chain, tx_hash and log_index (and the reversal count after a deep reorg),
        -- unique in the ledger: see wallet.deposits.recording.credit_reference.
        CREATE TABLE deposits (
            id text PRIMARY KEY,
            tenant_id text NOT NULL REFERENCES tenants,
            wallet_id text NOT NULL REFERENCES wallets,
            chain text NOT NULL,
            tx_hash text NOT NULL,
            log_index integer NOT NULL,
            asset text NOT NULL REFERENCES assets,
            amount numeric(78, 0) NOT NULL CHECK (amount > 0),
            from_address text NOT NULL,
            to_address text NOT NULL,
            block_number bigint NOT NULL CHECK (block_number >= 0),
            block_hash text NOT NULL,
            status text NOT NULL CHECK (
                status IN ('seen', 'credited', 'orphaned', 'below_minimum', 'reversed')),
            confirmations integer NOT NULL DEFAULT 0 CHECK (confirmations >= 0),
            hold_id bigint REFERENCES holds,
            credit_transaction_id bigint REFERENCES ledger_transactions,
            reversal_transaction_id bigint REFERENCES ledger_transactions,
            reversal_count integer NOT NULL DEFAULT 0 CHECK (reversal_count >= 0),
            seen_at timestamptz NOT NULL DEFAULT now(),
            credited_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (chain, tx_hash, log_index),
            CHECK (status <> 'credited'
                   OR (credit_transaction_id IS NOT NULL AND credited_at IS NOT NULL)),
            CHECK (status <> 'reversed'
                   OR (credit_transaction_id IS NOT NULL AND reversal_transaction_id IS NOT NULL))
        );
        CREATE INDEX deposits_wallet ON deposits (wallet_id, seen_at DESC, id DESC);
        CREATE INDEX deposits_tenant ON deposits (tenant_id, seen_at DESC, id DESC);
        CREATE INDEX deposits_chain_block ON deposits (chain, block_number);
        CREATE INDEX deposits_unconfirmed ON deposits (chain, block_number)
            WHERE status = 'seen';

        -- The last accepted block headers of each chain (the follower's known window).
        CREATE TABLE chain_headers (
            chain text NOT NULL,
            number bigint NOT NULL CHECK (number >= 0),
            hash text NOT NULL,
            parent_hash text NOT NULL,
            timestamp bigint NOT NULL,
            PRIMARY KEY (chain, number)
        );

        -- Where the watcher of a chain stands: the newest accepted block. Written in the same
        -- transaction as the headers and deposits of that block.
        CREATE TABLE chain_cursors (
            chain text PRIMARY KEY,
            block_number bigint NOT NULL CHECK (block_number >= 0),
            block_hash text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        """
    )
