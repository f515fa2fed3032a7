"""The post-mortem's chart: error rate and p95 latency over the incident window, with each
action drawn as a vertical line at the time the status recorded for it. Saved as PNG and SVG;
in the SVG every marker is a group with a stable id (`action-<step id>-<panel>`) and each
panel's plot area is `plot-area-<panel>`, so the image can be checked, not only looked at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mitigator.metrics.history import Series

PANELS = ("errors", "latency")


@dataclass(frozen=True)
class Marker:
    label: str  # the step id (or Detected / Resolved)
    at: datetime
    kind: str  # "action", "detected" or "resolved"


def render(
    *,
    error_rate: Series,
    p95: Series,
    markers: list[Marker],
    start: datetime,
    end: datetime,
    title: str,
    png: Path,
    svg: Path,
) -> None:
    import matplotlib  # noqa: PLC0415 - only the post-mortem needs it (slow to import)

    matplotlib.use("Agg")
    import matplotlib.dates as mdates  # noqa: PLC0415
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(2, 1, sharex=True, figsize=(10, 6), dpi=100)
    try:
        for ax, panel, series, ylabel, scale in (
            (axes[0], "errors", error_rate, "error rate (%)", 100.0),
            (axes[1], "latency", p95, "p95 latency (s)", 1.0),
        ):
            ax.patch.set_gid(f"plot-area-{panel}")
            if series:
                ax.plot(
                    [t for t, _ in series],
                    [v * scale for _, v in series],
                    color="tab:red" if panel == "errors" else "tab:blue",
                    linewidth=1.5,
                )
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
            for marker in markers:
                style = {"action": ("tab:green", "-"), "detected": ("black", ":")}.get(
                    marker.kind, ("grey", "--")
                )
                line = ax.axvline(marker.at, color=style[0], linestyle=style[1], linewidth=1.2)
                line.set_gid(f"{marker.kind}-{marker.label}-{panel}")
                if panel == "errors":
                    ax.annotate(
                        marker.label,
                        xy=(mdates.date2num(marker.at), 1.0),  # type: ignore[no-untyped-call]
                        xycoords=("data", "axes fraction"),
                        rotation=90,
                        fontsize=7,
                        va="top",
                        ha="right",
                    )
        axes[1].set_xlim(start, end)  # shared: the incident window exactly
        axes[1].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))  # type: ignore[no-untyped-call]
        axes[1].set_xlabel("UTC")
        figure.suptitle(title)
        figure.savefig(png, format="png")
        figure.savefig(svg, format="svg")
    finally:
        plt.close(figure)
