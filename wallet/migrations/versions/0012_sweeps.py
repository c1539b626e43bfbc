"""Sweeps: deposit addresses emptied into the hot wallet, the hot wallet's excess sent cold.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.execute(
        """
        -- A sweep job: `kind` 'sweep' moves one asset from a deposit address to the hot
        -- wallet (a token first gets gas from the hot wallet: `gas_requested`, then
        -- `gas_confirmed` once the top-up's receipt is final); 'cold' sends the hot wallet's
        -- excess above the ceiling to the cold address. `amount` is what the transfer
        -- carries; `network_fee` what the chain took, in the native asset, once final.
        CREATE TABLE sweeps (
            id text PRIMARY KEY,
            kind text NOT NULL CHECK (kind IN ('sweep', 'cold')),
            chain text NOT NULL,
            asset text NOT NULL REFERENCES assets,
            source text NOT NULL CHECK (source ~ '^0x[0-9a-f]{40}$'),
            destination text NOT NULL CHECK (destination ~ '^0x[0-9a-f]{40}$'),
            amount numeric(78, 0) NOT NULL CHECK (amount >= 0),
            status text NOT NULL CHECK (status IN (
                'gas_requested', 'gas_confirmed', 'sweep_sent', 'sweep_confirmed', 'failed')),
            network_fee numeric(78, 0) NOT NULL DEFAULT 0,
            failure_reason text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX sweeps_open ON sweeps (chain, source)
            WHERE status IN ('gas_requested', 'gas_confirmed', 'sweep_sent');

        -- Every transaction of a sweep, signed and stored before it is sent: the gas top-up
        -- (from the hot wallet) and the transfer itself. `fee` and `succeeded` once final.
        CREATE TABLE sweep_transactions (
            tx_hash text PRIMARY KEY CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
            sweep_id text NOT NULL REFERENCES sweeps,
            phase text NOT NULL CHECK (phase IN ('gas', 'transfer')),
            sender text NOT NULL CHECK (sender ~ '^0x[0-9a-f]{40}$'),
            nonce bigint NOT NULL CHECK (nonce >= 0),
            raw_transaction bytea NOT NULL,
            max_fee_per_gas numeric(78, 0) NOT NULL,
            gas bigint NOT NULL,
            send_outcome text,
            block_number bigint,
            succeeded boolean,
            fee numeric(78, 0),
            signed_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX sweep_transactions_sweep ON sweep_transactions (sweep_id, signed_at);
        """
    )
