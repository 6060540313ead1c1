"""Who is asking: the client's IP and user agent, as recorded in sessions and the log."""

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
