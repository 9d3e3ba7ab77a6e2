"""The time windows of behavioural leaves (spec 5.2, 5.3, clarifications 3, 15, 18, 19).

Every bound is computed once, in Python, as an aware UTC instant (the calendar arithmetic of
:mod:`cohort_pipeline.engine.dates`, in the project timezone); events are then compared with those constants, so
the per-event work is a pair of integer comparisons and the bounds push down into the event scan.

* ``Wd`` (:func:`day_aligned`): inclusive ``[lower, upper]``; lower = ``now - N unit`` truncated to the start of
  its local day (hour for ``hour``), upper = the end of today. ``explicit_datetime`` replaces the lower bound (an
  absolute value keeps its time, a relative one is truncated) and ``explicit_datetime_to`` the upper bound (always
  the end of its day).
* ``We`` (:func:`exact`): exclusive ``(now - N unit, now + 5 s)``, or ``(explicit_datetime, explicit_datetime_to)``.
* stopped / restarted (:func:`stopped_windows`, :func:`restarted_windows`) and the regularity span
  (:class:`Regularity`) are built from the same helpers.

Explicit bounds apply to the four behaviours spec 5.1 lists (performed_event, performed_event_multiple,
performed_event_first_time, performed_event_sequence); stopped, restarted and regularly always use
``time_value`` / ``time_interval`` (which the model requires for them). PostHog would apply an
``explicit_datetime`` to both windows of ``stopped_performing_event``, making it match nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import polars as pl

from cohort_pipeline.engine import dates
from cohort_pipeline.engine.operators import EvaluationContext
from cohort_pipeline.errors import CalculationError
from cohort_pipeline.model.rules import DATE_VALUE_HINT

Closed = Literal["both", "none"]


@dataclass(frozen=True)
class Window:
    """A time window over event timestamps: both bounds inclusive (``Wd``) or both exclusive (``We``)."""

    lower: datetime
    upper: datetime
    closed: Closed = "both"

    def contains(self, timestamp: pl.Expr) -> pl.Expr:
        if self.closed == "both":
            return (timestamp >= self.lower) & (timestamp <= self.upper)
        return (timestamp > self.lower) & (timestamp < self.upper)

    @property
    def key(self) -> str:
        """Identifies the window in de-duplication keys of aggregates."""
        return f"{self.closed}:{self.lower.isoformat()}:{self.upper.isoformat()}"


def _invalid(name: str, value: Any) -> CalculationError:
    return CalculationError(f"Invalid {name} '{value}'. {DATE_VALUE_HINT}", error_code="validation_error")


def _relative_unit(value: str) -> str:
    """The ``relativedelta`` field of a relative value (``-7d`` -> ``days``)."""
    match = dates.RELATIVE_DATE_PATTERN.match(value.strip())
    assert match is not None
    return dates.RELATIVE_UNITS[match["unit"]][0]


def _instant(name: str, value: Any, ctx: EvaluationContext) -> datetime:
    """An explicit bound without truncation: relative values against ``now``, absolute ones as written (a date
    alone is its midnight in the project timezone)."""
    parsed = dates.parse_datetime_value(value, now=ctx.now, timezone=ctx.timezone)
    if parsed is None:
        raise _invalid(name, value)
    return parsed


def _truncate(moment: datetime, hourly: bool, ctx: EvaluationContext) -> datetime:
    if hourly:
        return dates.start_of_hour(moment, ctx.timezone)
    return dates.start_of_day(moment, ctx.timezone)


def _explicit_lower(value: str, ctx: EvaluationContext) -> datetime:
    """Spec 5.2: an absolute lower bound keeps its exact time; a relative one is truncated like ``Wd`` (to the
    hour for ``h`` values, to the day otherwise)."""
    moment = _instant("explicit_datetime", value, ctx)
    if dates.is_relative_date(value):
        return _truncate(moment, _relative_unit(value) == "hours", ctx)
    return moment


def _explicit_upper(value: str, ctx: EvaluationContext) -> datetime:
    """Spec 5.2: ``explicit_datetime_to`` is always pushed to 23:59:59.999999 of its (local) day."""
    return dates.end_of_day(_instant("explicit_datetime_to", value, ctx), ctx.timezone)


def day_aligned_window(value: int, interval: str, ctx: EvaluationContext) -> Window:
    """``Wd(value, interval)`` (spec 5.2; clarification 19 for hours)."""
    lower, upper = dates.day_aligned_window(ctx.now, value, interval, ctx.timezone)
    return Window(lower, upper)


def day_aligned(leaf: Any, ctx: EvaluationContext) -> Window:
    """The leaf's ``Wd``: from ``time_value``/``time_interval``, or from ``explicit_datetime`` (+ ``_to``)."""
    if leaf.explicit_datetime is not None:
        upper = (_explicit_upper(leaf.explicit_datetime_to, ctx) if leaf.explicit_datetime_to is not None
                 else dates.end_of_day(ctx.now, ctx.timezone))
        return Window(_explicit_lower(leaf.explicit_datetime, ctx), upper)
    return day_aligned_window(leaf.time_value, leaf.time_interval, ctx)


def exact(leaf: Any, ctx: EvaluationContext) -> Window:
    """The leaf's ``We`` (performed_event_multiple): exclusive bounds, no truncation (spec 5.2)."""
    if leaf.explicit_datetime is not None:
        upper = (_instant("explicit_datetime_to", leaf.explicit_datetime_to, ctx)
                 if leaf.explicit_datetime_to is not None else ctx.now + dates.EXACT_WINDOW_GRACE)
        return Window(_instant("explicit_datetime", leaf.explicit_datetime, ctx), upper, "none")
    lower, upper = dates.exact_window(ctx.now, leaf.time_value, leaf.time_interval, ctx.timezone)
    return Window(lower, upper, "none")


def stopped_windows(leaf: Any, ctx: EvaluationContext) -> tuple[Window, Window]:
    """``(Wd(time), Wd(seq))``: did it in the long look-back, not in the recent window (spec 5.3)."""
    return (day_aligned_window(leaf.time_value, leaf.time_interval, ctx),
            day_aligned_window(leaf.seq_time_value, leaf.seq_time_interval, ctx))


def restarted_windows(leaf: Any, ctx: EvaluationContext) -> tuple[Window, Window]:
    """``(R, G)`` of spec 5.3: the recent window ``R = Wd(seq)`` and the gap ``G`` from the truncated start of
    ``now - time`` to the end of the day of ``now - seq``. They overlap on that day (the table's last row)."""
    recent = day_aligned_window(leaf.seq_time_value, leaf.seq_time_interval, ctx)
    gap_lower = day_aligned_window(leaf.time_value, leaf.time_interval, ctx).lower
    seq_day = dates.shift(ctx.now, -leaf.seq_time_value, leaf.seq_time_interval, ctx.timezone)
    return recent, Window(gap_lower, dates.end_of_day(seq_day, ctx.timezone))


# ---- regularity ------------------------------------------------------------------------------------------------

#: First day of a week for ``toStartOfWeek``: PostHog's default ``week_start_day`` (Sunday, ClickHouse mode 0).
WEEK_STARTS_ON_SUNDAY = True


def _start_of_week(moment: datetime, timezone: str) -> datetime:
    local = dates.start_of_day(moment, timezone).astimezone(ZoneInfo(timezone))
    back = (local.weekday() + 1) % 7 if WEEK_STARTS_ON_SUNDAY else local.weekday()
    return dates.start_of_day((local - timedelta(days=back)).replace(hour=12), timezone)


def _start_of_month(moment: datetime, timezone: str) -> datetime:
    local = moment.astimezone(ZoneInfo(timezone))
    return dates.start_of_day(local.replace(day=1, hour=12, minute=0, second=0, microsecond=0), timezone)


#: ``toStartOfInterval`` applied to the regularity scan's lower bound (spec 5.3: StickinessQuery aligns
#: ``date_from`` to its interval bucket; not for hours - nor minutes, which PostHog has no bucket for).
_BUCKET_START = {
    "day": dates.start_of_day,
    "week": _start_of_week,
    "month": _start_of_month,
}


@dataclass(frozen=True)
class Regularity:
    """The analysed span of ``performed_event_regularly`` and its period index (spec 5.3).

    ``unit`` / ``step`` are the period length (a year is 12 months); ``window`` runs from the start of the
    interval bucket of ``Wd(total_periods x step, unit)``'s lower bound to 23:59:59.999999 yesterday. An event's
    period is ``floor(age(unit, ts, end of yesterday) / step)`` where ``age`` counts whole elapsed units, as
    ClickHouse's ``age`` does: local calendar days (weeks = days // 7), local calendar months (one less when the
    day of month has not been reached), elapsed hours / minutes.
    """

    unit: str
    step: int
    window: Window
    timezone: str

    @classmethod
    def of(cls, leaf: Any, ctx: EvaluationContext) -> Regularity:
        unit, step = leaf.time_interval, leaf.time_value
        if unit == "year":
            unit, step = "month", step * 12
        lower = dates.day_aligned_window(ctx.now, step * leaf.total_periods, unit, ctx.timezone)[0]
        align = _BUCKET_START.get(unit)
        if align is not None:
            lower = align(lower, ctx.timezone)
        upper = dates.end_of_day(dates.shift(ctx.now, -1, "day", ctx.timezone), ctx.timezone)
        return cls(unit, step, Window(lower, upper), ctx.timezone)

    def period_index(self, timestamp: pl.Expr) -> pl.Expr:
        """The period of a timestamp inside the span (0: the most recent; null outside the span).

        Elapsed minutes and hours are arithmetic. Days, weeks and months count local calendar days, and the local
        date of every row would mean a time-zone conversion per row (about three times the cost of the rest of the
        branch); instead each local day of the span gets its period here, and a row finds its day by a binary
        search over the days' first instants (UTC, DST-aware)."""
        inside = timestamp.is_between(self.window.lower, self.window.upper)
        end = self.window.upper
        if self.unit in ("minute", "hour"):
            elapsed = pl.lit(end) - timestamp
            age = elapsed.dt.total_minutes() if self.unit == "minute" else elapsed.dt.total_hours()
            return pl.when(inside).then((age // self.step).cast(pl.Int64))
        zone = ZoneInfo(self.timezone)
        first, last = self.window.lower.astimezone(zone).date(), end.astimezone(zone).date()
        days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
        starts = pl.Series([dates.start_of_day(datetime.combine(day, time(12), tzinfo=zone), self.timezone)
                            for day in days], dtype=pl.Datetime("us", "UTC"))
        periods = pl.Series([self._age_of(day, last) // self.step for day in days], dtype=pl.Int64)
        day = pl.lit(starts).search_sorted(timestamp, side="right").cast(pl.Int64) - 1  # -1: before the first day
        return pl.when(inside).then(pl.lit(periods).gather(day.clip(0)))

    def _age_of(self, day: date, last: date) -> int:
        """Whole elapsed units from local ``day`` to ``last`` (the span's end, 23:59:59.999999 of that day), as
        ClickHouse's ``age``: calendar days, weeks of 7 days, calendar months (one less before the day of month)."""
        if self.unit == "day":
            return (last - day).days
        if self.unit == "week":
            return (last - day).days // 7
        months = (last.year * 12 + last.month) - (day.year * 12 + day.month)
        return months - (day.day > last.day)
