"""Who is asking: the client's IP and user agent as recorded in sessions and the log,
and the readable device label shown for a session."""

import ipaddress
from functools import lru_cache

import user_agents
from django.http import HttpRequest

from .conf import auth_settings

MAX_USER_AGENT = 512


def parse_ip(value: str | None) -> str | None:
    """The address in a header value, or None: strips a port (`1.2.3.4:80`,
    `[v6]:80`) and brackets (`[v6]`); anything else that is not an address (such as
    `unknown` or a hostname) is None, so nothing unparsed reaches an inet column."""
    value = (value or "").strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]  # IPv4 with a port; bare IPv6 has several colons
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    # Trust X-Forwarded-For only for as many hops as AUTH_NUM_PROXIES says we have
    # (the DRF NUM_PROXIES rule); otherwise a client could pick its own throttle key.
    # A forwarded value that is not an address falls back to the peer's.
    num_proxies = auth_settings().num_proxies
    if num_proxies > 0:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            ip = parse_ip(hops[-min(num_proxies, len(hops))])
            if ip is not None:
                return ip
    return parse_ip(request.META.get("REMOTE_ADDR"))


def user_agent(request: HttpRequest) -> str:
    agent: str = request.META.get("HTTP_USER_AGENT", "")
    return agent[:MAX_USER_AGENT]


UNKNOWN = "Other"


@lru_cache(maxsize=1024)
def device_label(user_agent: str) -> str:
    """A label such as "Firefox on Windows", parsed from a User-Agent header.

    Cached: parsing runs many regular expressions and a user has few distinct agents.
    """
    if not user_agent:
        return "Unknown device"
    parsed = user_agents.parse(user_agent)
    browser: str = parsed.browser.family
    os: str = parsed.os.family
    if browser == UNKNOWN and os == UNKNOWN:
        return "Unknown device"
    if os == UNKNOWN:
        return browser
    if browser == UNKNOWN:
        return f"Unknown browser on {os}"
    return f"{browser} on {os}"
