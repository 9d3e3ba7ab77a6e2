"""Behavioural leaves (spec section 5), one module per concern.

* :mod:`.windows` - the time windows of spec 5.2 (day-aligned ``Wd``, exact ``We``, explicit bounds, the
  stopped / restarted windows and the regularity span with its period index);
* :mod:`.actions` - PostHog actions (an OR of steps) as event predicates;
* :mod:`.event_matching` - what a leaf matches on one event: its event or action (a *target*) and its
  ``event_filters``, compiled once per distinct target / filter set into row columns;
* :mod:`.plan` - the fused plan every behaviour contributes to: one scan, one join to persons, one group-by;
* the behaviour families: :mod:`.performed` (performed_event, performed_event_multiple), :mod:`.lifecycle`
  (performed_event_first_time, stopped_performing_event, restarted_performing_event), :mod:`.sequence` and
  :mod:`.regularity`.

The entry point is :class:`cohort_pipeline.engine.behavior.BehaviorPlanner`.
"""
