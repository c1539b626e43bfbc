"""Chain states: a watcher's halt and its reason, and the operators' resumes.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.execute(
        """
        -- Whether each chain's watcher follows its chain or stands halted for an operator; no
        -- row means running. A halt keeps its reason and since when, until a resume.
        CREATE TABLE chain_states (
            chain text PRIMARY KEY,
            state text NOT NULL CHECK (state IN ('running', 'halted')),
            reason text,
            since timestamptz NOT NULL DEFAULT now(),
            CHECK ((state = 'halted') = (reason IS NOT NULL))
        );

        -- Each `wallet chain resume`: who ran it, when, why, from which block, and the halt
        -- it ended.
        CREATE TABLE chain_resumes (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            chain text NOT NULL,
            from_block bigint NOT NULL CHECK (from_block >= 0),
            operator text NOT NULL CHECK (operator <> ''),
            reason text NOT NULL CHECK (reason <> ''),
            halt_reason text NOT NULL,
            halted_since timestamptz NOT NULL,
            orphaned integer NOT NULL CHECK (orphaned >= 0),
            reversed integer NOT NULL CHECK (reversed >= 0),
            resumed_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX chain_resumes_chain ON chain_resumes (chain, resumed_at DESC);
        """
    )
