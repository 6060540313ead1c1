"""A session's story, for the admin: its login, every rotation and grace replay,
its device binding, and the reuse or revocation that ended it, with who and why.

`session_story` reads it (one query for the steps, one for the events); `story_chart`
lays it out as an SVG picture with one lane per device and address, so that a
second party using the same session stands out as a second lane. Read only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q

from . import clock
from .clientinfo import device_label
from .models import Rotation, SecurityEvent, Session

# The newest steps shown; older rotations are counted, not drawn.
MAX_STEPS = 400

# Events that are part of one session's story (found by session id or in `data.sessions`).
_ENDINGS: dict[str, str] = {
    SecurityEvent.Kind.REFRESH_REUSE: "Reuse detected",
    SecurityEvent.Kind.ADMIN_REVOKED: "Revoked by an admin",
    SecurityEvent.Kind.LOGOUT: "Logout",
    SecurityEvent.Kind.LOGOUT_ALL: "Logout everywhere",
    SecurityEvent.Kind.SESSION_REVOKED: "Ended by its user",
    SecurityEvent.Kind.PASSWORD_CHANGED: "Password changed",
    SecurityEvent.Kind.USER_DEACTIVATED: "User deactivated",
    SecurityEvent.Kind.SESSION_LIMIT: "Session limit",
    SecurityEvent.Kind.SIGNING_KEY_RETIRED: "Signing key retired",
}


@dataclass(frozen=True)
class Step:
    at: datetime
    kind: str  # login | rotated | replayed | bound | event | ended | expired
    title: str
    generation: int | None = None
    ip: str | None = None
    device: str = ""
    details: str = ""

    @property
    def lane_key(self) -> str:
        return f"{self.device} · {self.ip or 'no address'}" if (self.device or self.ip) else ""


@dataclass(frozen=True)
class Story:
    session: Session
    steps: list[Step]
    omitted: int = 0
    lanes: list[str] = field(default_factory=list)


def _event_details(event: SecurityEvent) -> str:
    data = event.data or {}
    if event.kind == SecurityEvent.Kind.REFRESH_REUSE:
        first, replay = data.get("first_rotation") or {}, data.get("replay") or {}
        return (
            f"generation {data.get('presented_generation')} presented after generation "
            f"{data.get('current_generation')} was issued; rotated first from {first.get('ip')} "
            f"({device_label(first.get('user_agent') or '')}), replayed from {replay.get('ip')} "
            f"({device_label(replay.get('user_agent') or '')})"
        )
    if event.kind == SecurityEvent.Kind.ADMIN_REVOKED:
        return f"by admin {(data.get('admin') or {}).get('username', '?')}"
    if "admin" in data and isinstance(data["admin"], dict):
        return f"by admin {data['admin'].get('username', '?')}"
    return ", ".join(f"{key}={value}" for key, value in sorted(data.items()) if not isinstance(value, dict | list))


def _events(session: Session) -> list[SecurityEvent]:
    sid = str(session.pk)
    candidates = SecurityEvent.objects.filter(
        Q(session_id=session.pk) | Q(user_id=session.user_id, created_at__gte=session.created_at, session_id=None)
    ).order_by("created_at", "id")
    found = []
    for event in candidates:
        in_data = sid in [str(value) for value in (event.data or {}).get("sessions", [])]
        if str(event.session_id) == sid or in_data:
            found.append(event)
    return found


def session_story(session: Session) -> Story:
    """Every step of the session, oldest first (the newest MAX_STEPS rotations)."""
    steps = [
        Step(
            at=session.created_at,
            kind="login",
            title="Login",
            generation=1,
            ip=session.ip,
            device=device_label(session.user_agent),
        )
    ]
    rotations = session.rotations.order_by("-at", "-id")
    total = rotations.count()
    for row in reversed(list(rotations[:MAX_STEPS])):
        rotated = row.kind == Rotation.Kind.ROTATED
        steps.append(
            Step(
                at=row.at,
                kind=row.kind,
                title=f"Rotated to generation {row.generation}"
                if rotated
                else f"Grace replay of generation {row.presented}: handed generation {row.generation}",
                generation=row.generation,
                ip=row.ip,
                device=device_label(row.user_agent),
            )
        )
    bound_at = getattr(session, "bound_at", None)
    if bound_at is not None:
        steps.append(Step(at=bound_at, kind="bound", title="Bound to a device key", details=_binding_details(session)))
    for event in _events(session):
        if event.kind in {SecurityEvent.Kind.LOGIN_SUCCEEDED}:
            continue
        steps.append(
            Step(
                at=event.created_at,
                # A refused replay is drawn in the lane of whoever sent it: this is
                # the second party an admin is looking for.
                kind="reuse" if event.kind == SecurityEvent.Kind.REFRESH_REUSE else "event",
                title=_ENDINGS.get(event.kind, event.get_kind_display()),
                ip=event.ip,
                device=device_label(event.user_agent) if event.user_agent else "",
                details=_event_details(event),
            )
        )
    if session.revoked_at is not None:
        steps.append(Step(at=session.revoked_at, kind="ended", title=f"Ended: {session.get_revoke_reason_display()}"))
    elif clock.now() >= session.expires_at:
        steps.append(Step(at=session.expires_at, kind="expired", title="Expired"))
    steps.sort(key=lambda step: step.at)
    lanes: list[str] = []
    for step in steps:
        if step.kind in _LANED and step.lane_key not in lanes:
            lanes.append(step.lane_key)
    return Story(session=session, steps=steps, omitted=max(0, total - MAX_STEPS), lanes=lanes)


def _binding_details(session: Session) -> str:
    thumbprint = getattr(session, "binding_jkt", "") or getattr(session, "bound_jkt", "")
    return f"key thumbprint {thumbprint}" if thumbprint else ""


# --- The picture --------------------------------------------------------------

# Steps drawn in the lane of the device that took them; the rest sit on the session's axis.
_LANED = {"login", "rotated", "replayed", "reuse"}
# Labels closer than this (px) on one line are moved below the mark instead.
_LABEL_GAP = 90

WIDTH, LEFT, RIGHT, LANE_HEIGHT, TOP = 960, 230, 30, 46, 34
_MARKS = {
    "login": "login",
    "rotated": "rotation",
    "replayed": "replay",
    "bound": "binding",
    "event": "event",
    "reuse": "reuse",
    "ended": "ending",
    "expired": "ending",
}


@dataclass(frozen=True)
class Mark:
    x: float
    y: float
    css: str
    label: str
    tooltip: str
    label_y: float = 0.0
    anchor: str = "middle"


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    lanes: list[tuple[float, str]]  # (y, label)
    marks: list[Mark]
    axis_y: float
    start: datetime
    end: datetime
    left: int = LEFT
    right: int = WIDTH - RIGHT


def story_chart(story: Story) -> Chart:
    """Positions for the SVG: time runs left to right; each device and address has a
    lane; events that belong to no lane (an admin's revocation) sit on the axis."""
    steps = story.steps
    start = steps[0].at
    end = max(step.at for step in steps)
    span = max((end - start).total_seconds(), 1.0)
    lanes = story.lanes or [""]
    lane_y = {key: TOP + index * LANE_HEIGHT for index, key in enumerate(lanes)}
    axis_y = TOP + len(lanes) * LANE_HEIGHT
    marks = []
    last_label: dict[float, float] = {}
    for step in steps:
        x = LEFT + (WIDTH - LEFT - RIGHT) * (step.at - start).total_seconds() / span
        y = lane_y.get(step.lane_key, axis_y) if step.kind in _LANED else axis_y
        crowded = x - last_label.get(y, -_LABEL_GAP) < _LABEL_GAP
        if not crowded:
            last_label[y] = x
        where = ", ".join(part for part in (step.ip, step.device) if part)
        tooltip = " · ".join(
            part for part in (f"{step.at:%Y-%m-%d %H:%M:%S} UTC", step.title, where, step.details) if part
        )
        label = str(step.generation) if step.kind in {"rotated", "replayed"} else step.title
        marks.append(
            Mark(
                x=round(x, 1),
                y=y,
                css=_MARKS[step.kind],
                label=label,
                tooltip=tooltip,
                label_y=y + 22 if crowded else y - 11,
                # Labels near an edge grow inwards, so that none is cut off.
                anchor="end" if x > WIDTH - RIGHT - 80 else ("start" if x < LEFT + 40 else "middle"),
            )
        )
    return Chart(
        width=WIDTH,
        height=axis_y + 40,
        lanes=[(lane_y[key], key or "unknown device") for key in lanes],
        marks=marks,
        axis_y=axis_y,
        start=start,
        end=end,
    )
