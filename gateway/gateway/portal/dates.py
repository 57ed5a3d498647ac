"""Dates and moments as the portal shows them: in Czech time, written as the page's language
writes them (Babel). Every page module uses these; they import nothing of the portal."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask_babel import format_date, format_time

LOCAL_TIME = ZoneInfo("Europe/Prague")


def _datetime(value) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif value:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def date_time(value) -> str:
    """A moment in Czech time: the date as the language writes it and the time to the minute."""
    moment = _datetime(value)
    if moment is None:
        return ""
    local = moment.astimezone(LOCAL_TIME)
    return f"{format_date(local, 'medium', rebase=False)} {format_time(local, 'short', rebase=False)}"


def date_only(value) -> str:
    if not value:
        return ""
    moment = _datetime(value) if "T" in str(value) else None
    if moment is not None:
        return format_date(moment.astimezone(LOCAL_TIME), "medium", rebase=False)
    try:
        return format_date(date.fromisoformat(str(value)[:10]), "medium")
    except ValueError:
        return ""
