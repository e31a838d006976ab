"""Fixtures of the chart tests (defined in chart_helpers, a uniquely named module)."""

from chart_helpers import chart_dir, helm, helm4, renderer  # noqa: F401
