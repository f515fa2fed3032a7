"""Numbers as people read them in reasons and checks: "12.3%", "4.57s"."""

import math


def format_ratio_as_percent(ratio: float) -> str:
    """0.123 → "12.3%", 0.05 → "5%", 0.005 → "0.5%"."""
    return f"{ratio * 100:.3g}%"


def format_seconds(seconds: float) -> str:
    """25.0 → "25s", 4.567 → "4.57s", 250.4 → "250s", +Inf → "+Inf s"."""
    if math.isinf(seconds):
        return "+Inf s" if seconds > 0 else "-Inf s"
    if abs(seconds) >= 100:
        return f"{seconds:.0f}s"
    return f"{seconds:.3g}s"
