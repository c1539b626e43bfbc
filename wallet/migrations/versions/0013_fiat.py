"""Fiat rails: linked bank accounts, pay-ins, payouts, the provider events received, restricted
wallets.

A wallet whose fiat balance went negative (a pay-in returned or charged back after it was
spent) is `restricted`: nothing may leave it, money may still come in. `transfer_apply` is
installed again from its source, which lets a restricted wallet receive transfers.

Revision ID: 0013
Revises: 0012
"""

from alembic import op
from alembic_utils.reversible_op import ReplaceOp

from wallet import sql

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE wallets DROP CONSTRAINT wallets_status_check;
        ALTER TABLE wallets ADD CONSTRAINT wallets_status_check
            CHECK (status IN ('active', 'restricted', 'frozen', 'closed'));

        -- All we keep of a bank account: the provider's token and what a person needs to see.
        CREATE TABLE bank_accounts (
            id text PRIMARY KEY,
            tenant_id text NOT NULL REFERENCES tenants,
            wallet_id text NOT NULL REFERENCES wallets,
            provider text NOT NULL,
            token text NOT NULL,
            holder_name text NOT NULL,
            last4 text NOT NULL,
            currency text NOT NULL REFERENCES assets,
            country text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            deleted_at timestamptz
        );
        CREATE UNIQUE INDEX bank_accounts_token ON bank_accounts (wallet_id, provider, token)
            WHERE deleted_at IS NULL;
        CREATE INDEX bank_accounts_tenant ON bank_accounts (tenant_id, created_at DESC, id DESC);

        -- A pay-in is written (`creating`) before the provider is asked, under the id that is
        -- also our idempotency key at the provider; `unknown` when the provider's answer was
        -- lost. `provider_version` is the version of the newest provider snapshot applied.
        CREATE TABLE payins (
            id text PRIMARY KEY,
            tenant_id text NOT NULL REFERENCES tenants,
            wallet_id text NOT NULL REFERENCES wallets,
            bank_account_id text NOT NULL REFERENCES bank_accounts,
            provider text NOT NULL,
            asset text NOT NULL REFERENCES assets,
            amount numeric(78, 0) NOT NULL CHECK (amount > 0),
            fee numeric(78, 0) NOT NULL CHECK (fee >= 0 AND fee < amount),
            status text NOT NULL CHECK (status IN ('creating', 'unknown', 'pending',
                'processing', 'succeeded', 'failed', 'returned', 'charged_back')),
            provider_payment_id text,
            provider_version integer NOT NULL DEFAULT 0,
            failure_code text,
            hold_id bigint REFERENCES holds,
            credit_transaction_id bigint REFERENCES ledger_transactions,
            reversal_transaction_id bigint REFERENCES ledger_transactions,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (provider, provider_payment_id),
            CHECK (status NOT IN ('succeeded', 'returned', 'charged_back')
                   OR credit_transaction_id IS NOT NULL),
            CHECK (status NOT IN ('returned', 'charged_back')
                   OR reversal_transaction_id IS NOT NULL)
        );
        CREATE INDEX payins_tenant ON payins (tenant_id, created_at DESC, id DESC);
        CREATE INDEX payins_wallet ON payins (wallet_id, created_at DESC, id DESC);
        CREATE INDEX payins_unresolved ON payins (updated_at)
            WHERE status IN ('creating', 'unknown');

        -- A payout holds amount + fee on the wallet from its request; it is written `sending`
        -- before the provider is asked, under the id that is our idempotency key there, and is
        -- `unknown` when the answer was lost. `send_attempts` counts the creates begun, each
        -- committed before it is sent: after the first, the provider is asked before any other.
        -- Paid: posted; failed: released; returned after paid: reversed.
        CREATE TABLE payouts (
            id text PRIMARY KEY,
            tenant_id text NOT NULL REFERENCES tenants,
            wallet_id text NOT NULL REFERENCES wallets,
            bank_account_id text NOT NULL REFERENCES bank_accounts,
            provider text NOT NULL,
            asset text NOT NULL REFERENCES assets,
            amount numeric(78, 0) NOT NULL CHECK (amount > 0),
            fee numeric(78, 0) NOT NULL CHECK (fee >= 0),
            status text NOT NULL CHECK (status IN ('sending', 'unknown', 'pending', 'processing',
                'paid', 'failed', 'returned')),
            provider_payment_id text,
            provider_version integer NOT NULL DEFAULT 0,
            failure_code text,
            hold_id bigint NOT NULL REFERENCES holds,
            send_attempts integer NOT NULL DEFAULT 0 CHECK (send_attempts >= 0),
            post_transaction_id bigint REFERENCES ledger_transactions,
            reversal_transaction_id bigint REFERENCES ledger_transactions,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (provider, provider_payment_id),
            CHECK (status NOT IN ('paid', 'returned') OR post_transaction_id IS NOT NULL),
            CHECK (status <> 'returned' OR reversal_transaction_id IS NOT NULL)
        );
        CREATE INDEX payouts_tenant ON payouts (tenant_id, created_at DESC, id DESC);
        CREATE INDEX payouts_unresolved ON payouts (updated_at)
            WHERE status IN ('sending', 'unknown');

        -- Each provider event once, by its id; `outcome` says what applying it did.
        CREATE TABLE provider_events (
            provider text NOT NULL,
            event_id text NOT NULL,
            event_type text NOT NULL,
            payment_id text NOT NULL,
            payment_version integer NOT NULL,
            outcome text NOT NULL CHECK (outcome IN ('applied', 'stale', 'unmatched')),
            payload jsonb NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (provider, event_id)
        );
        CREATE INDEX provider_events_unmatched ON provider_events (received_at)
            WHERE outcome = 'unmatched';
        """
    )
    op.invoke(ReplaceOp(sql.function("transfer_apply")))
