"""Which hosts webhooks may be sent to: public internet addresses only, unless allowed.

A tenant chooses the URL and reads back how each delivery went, so a URL naming the service's
own network (loopback, the cloud metadata address, private ranges) would let a tenant probe
or reach it. Registration refuses what it can see in the URL (literal addresses, their odd
encodings, names that are local by definition); the connection itself refuses every address
a name resolves to that is not public (`wallet.webhooks.egress`), so a name that resolves
elsewhere later (DNS rebinding) gains nothing.
"""

import ipaddress
import re
import socket
from typing import Final

from wallet.webhooks.errors import WebhookDestinationNotAllowed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that never leave the local network or the provider's (RFC 6761, 6762, 8375; the
# clouds' metadata names end in `.internal`).
_LOCAL_SUFFIXES: Final = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain")
# The WHATWG URL rule: a host whose last label is a number is an IPv4 address.
_NUMERIC_LABEL: Final = re.compile(r"(0x[0-9a-f]*|[0-9]+)")


def is_public(address: IPAddress) -> bool:
    """Whether `address` is a unicast address of the public internet.

    Refused: loopback, private, link-local, unique-local and site-local, CGNAT (100.64/10),
    documentation and benchmark ranges, multicast, unspecified and reserved addresses (IPv4
    mapped, NAT64 and Teredo addresses among them), and 6to4 addresses of an IPv4 address
    that is not public.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local:
            return False
        # 6to4 (2002::/16) counts as global, whatever IPv4 address it leads to.
        if address.sixtofour is not None and not is_public(address.sixtofour):
            return False
    return address.is_global and not (address.is_multicast or address.is_reserved)


def check_host(hostname: str, *, allow_private: bool) -> None:
    """Refuse a URL's host that is not a public destination as written.

    Odd encodings of IPv4 addresses (`0x7f000001`, `2130706433`, `0177.0.0.1`, `127.1`) are
    refused always: resolvers read them as addresses, people rarely mean them so.
    """
    host = hostname.lower().rstrip(".")
    address = _literal_address(host)
    if allow_private:
        return
    if address is not None:
        if not is_public(address):
            raise WebhookDestinationNotAllowed(f"{address} is not a public internet address")
    elif "." not in host or host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
        raise WebhookDestinationNotAllowed(f"{hostname!r} is not a public host name")


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]) is None:
        return None
    try:
        packed = socket.inet_aton(host)
    except OSError:
        raise WebhookDestinationNotAllowed(f"{host!r} is not a valid IPv4 address") from None
    raise WebhookDestinationNotAllowed(
        f"{host!r} is IPv4 address {ipaddress.IPv4Address(packed)} written unusually; "
        "write it as four decimal numbers"
    )
