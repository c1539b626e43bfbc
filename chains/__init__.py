"""EVM chain adapter: follows a chain for deposits to watched addresses. Never imports `wallet`."""

from chains.follower import TRANSFER_TOPIC, ChainFollower, TraceMode, WrongChain, fetch_header
from chains.model import (
    TOP_LEVEL_INDEX,
    AddressSet,
    Advance,
    BlockHeader,
    NativeTransfer,
    Rollback,
    ScannedBlock,
    StepResult,
    TokenTransfer,
    WatchedAddresses,
    next_window,
    normalize_address,
    trace_index,
)
from chains.rpc import (
    NodeUnreachable,
    RpcCall,
    RpcClient,
    RpcError,
    RpcProtocolError,
    RpcResponseError,
)

__all__ = [
    "TOP_LEVEL_INDEX",
    "TRANSFER_TOPIC",
    "AddressSet",
    "Advance",
    "BlockHeader",
    "ChainFollower",
    "NativeTransfer",
    "NodeUnreachable",
    "Rollback",
    "RpcCall",
    "RpcClient",
    "RpcError",
    "RpcProtocolError",
    "RpcResponseError",
    "ScannedBlock",
    "StepResult",
    "TokenTransfer",
    "TraceMode",
    "WatchedAddresses",
    "WrongChain",
    "fetch_header",
    "next_window",
    "normalize_address",
    "trace_index",
]
