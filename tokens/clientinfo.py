"""Who is asking: the client's IP and user agent as recorded in sessions and the log,
and the readable device label shown for a session."""

from functools import lru_cache

import user_agents
from django.http import HttpRequest

from .conf import auth_settings

MAX_USER_AGENT = 512


def client_ip(request: HttpRequest) -> str | None:
    # Trust X-Forwarded-For only for as many hops as AUTH_NUM_PROXIES says we have
    # (the DRF NUM_PROXIES rule); otherwise a client could pick its own throttle key.
    num_proxies = auth_settings().num_proxies
    if num_proxies > 0:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-min(num_proxies, len(hops))]
    return request.META.get("REMOTE_ADDR") or None


def user_agent(request: HttpRequest) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:MAX_USER_AGENT]


UNKNOWN = "Other"


@lru_cache(maxsize=1024)
def device_label(user_agent: str) -> str:
    """A label such as "Firefox on Windows", parsed from a User-Agent header.

    Cached: parsing runs many regular expressions and a user has few distinct agents.
    """
    if not user_agent:
        return "Unknown device"
    parsed = user_agents.parse(user_agent)
    browser, os = parsed.browser.family, parsed.os.family
    if browser == UNKNOWN and os == UNKNOWN:
        return "Unknown device"
    if os == UNKNOWN:
        return browser
    if browser == UNKNOWN:
        return f"Unknown browser on {os}"
    return f"{browser} on {os}"
