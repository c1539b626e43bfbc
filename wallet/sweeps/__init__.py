"""Sweeps: deposit addresses emptied into the hot wallet, the hot wallet's excess sent cold."""
