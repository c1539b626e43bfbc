"""Crypto withdrawals: requests, operator approvals, every signed attempt, hot wallet nonces.

Revision ID: 0007w
Revises: 0006
"""

from alembic import op

revision = "0007w"
down_revision = "0006"


def upgrade() -> None:
    op.execute(
        """
        -- A request to send an asset out of a wallet. Amounts are in the asset's minor unit:
        -- `fee` is what the wallet pays on top of `amount` (quoted at creation: the network
        -- fee at the quote's fee cap, converted for tokens, plus the asset's service fee);
        -- `network_fee` is what the chain took, in the chain's native asset, once mined.
        -- An internal withdrawal (to one of our own deposit addresses) has no chain
        -- transaction: it is one ledger transaction to `destination_wallet_id`.
        CREATE TABLE withdrawals (
            id text PRIMARY KEY,
            tenant_id text NOT NULL REFERENCES tenants,
            wallet_id text NOT NULL REFERENCES wallets,
            asset text NOT NULL REFERENCES assets,
            amount numeric(78, 0) NOT NULL CHECK (amount > 0),
            fee numeric(78, 0) NOT NULL CHECK (fee >= 0),
            destination_type text NOT NULL CHECK (destination_type IN ('crypto')),
            chain text NOT NULL,
            address text NOT NULL CHECK (address ~ '^0x[0-9a-f]{40}$'),
            internal boolean NOT NULL DEFAULT false,
            destination_wallet_id text REFERENCES wallets,
            status text NOT NULL CHECK (status IN (
                'pending_approval', 'queued', 'waiting_liquidity', 'signed', 'broadcast',
                'confirmed', 'failed', 'cancelled', 'unknown', 'completed')),
            approvals_required integer NOT NULL CHECK (approvals_required BETWEEN 0 AND 2),
            requested_by text NOT NULL,
            hold_id bigint REFERENCES holds,
            transaction_id bigint REFERENCES ledger_transactions,
            sender text,
            nonce bigint CHECK (nonce >= 0),
            tx_hash text,
            block_number bigint,
            block_hash text,
            confirmations integer NOT NULL DEFAULT 0 CHECK (confirmations >= 0),
            succeeded boolean,
            network_fee numeric(78, 0) CHECK (network_fee >= 0),
            failure_reason text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (chain, sender, nonce),
            CHECK (internal = (destination_wallet_id IS NOT NULL)),
            CHECK (status <> 'completed' OR (internal AND transaction_id IS NOT NULL)),
            CHECK (status <> 'confirmed' OR transaction_id IS NOT NULL),
            CHECK ((nonce IS NULL) = (sender IS NULL))
        );
        CREATE INDEX withdrawals_tenant ON withdrawals (tenant_id, created_at DESC, id DESC);
        CREATE INDEX withdrawals_wallet ON withdrawals (wallet_id, created_at DESC, id DESC);
        CREATE INDEX withdrawals_outgoing ON withdrawals (chain, created_at)
            WHERE status IN ('queued', 'waiting_liquidity', 'signed', 'broadcast', 'unknown');

        -- One row per operator key that approved a withdrawal.
        CREATE TABLE withdrawal_approvals (
            withdrawal_id text NOT NULL REFERENCES withdrawals,
            key_id text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (withdrawal_id, key_id)
        );

        -- Every transaction ever signed for a withdrawal, stored before it is sent: the first
        -- one and each fee bump (same nonce). Any of them may be the one that is mined.
        CREATE TABLE withdrawal_attempts (
            tx_hash text PRIMARY KEY CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
            withdrawal_id text NOT NULL REFERENCES withdrawals,
            chain text NOT NULL,
            nonce bigint NOT NULL CHECK (nonce >= 0),
            raw_transaction bytea NOT NULL,
            max_fee_per_gas numeric(78, 0) NOT NULL,
            max_priority_fee_per_gas numeric(78, 0) NOT NULL,
            gas bigint NOT NULL,
            send_outcome text,
            signed_at timestamptz NOT NULL DEFAULT now(),
            sent_at timestamptz
        );
        CREATE INDEX withdrawal_attempts_withdrawal
            ON withdrawal_attempts (withdrawal_id, signed_at);

        -- The next nonce of each hot wallet. Assigning one locks the row to the end of the
        -- transaction that also stores the signed attempt: nonces have no gaps.
        CREATE TABLE hot_wallet_nonces (
            chain text NOT NULL,
            address text NOT NULL CHECK (address ~ '^0x[0-9a-f]{40}$'),
            next_nonce bigint NOT NULL CHECK (next_nonce >= 0),
            PRIMARY KEY (chain, address)
        );
        """
    )
