"""Turn one `make bench` run's figures into docs/BENCHMARKS.md and print its summary table.

    python -m benchmarks.render RESULTS.jsonl SCENARIOS.jsonl docs/BENCHMARKS.md

RESULTS is what `benchmarks.harness.record` appended; SCENARIOS what tests/e2e/test_scenarios.py
wrote (MITIGATOR_FIGURES_FILE). Either may be missing or partial: what was not measured says so.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localkube.versions import ETCD_VERSION, KUBERNETES_VERSION

# The demo policy's verification window (localkube.demo): policy, not speed.
SCENARIO_WINDOW_S = 10.0
NOT_RUN = "not measured in this run"


def _load(path: str) -> list[dict[str, Any]]:
    file = Path(path)
    if not file.exists():
        return []
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def _ms(summary: dict[str, Any] | None) -> str:
    if not summary or summary.get("median_ms") is None:
        return "—"
    return f"{summary['median_ms']:.0f} / {summary['p95_ms']:.0f} ms"


def _load_note(entry: dict[str, Any]) -> str:
    return " / ".join(f"{x:.1f}" for x in entry.get("loadavg", []))


def _verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "**missed**")


class Report:
    def __init__(self, results: list[dict[str, Any]], scenarios: list[dict[str, Any]]) -> None:
        self.results = results
        self.scenarios = scenarios
        self.summary: list[tuple[str, str, str, str, str]] = []
        self.body: list[str] = []

    def all(self, section: str) -> list[dict[str, Any]]:
        return [r for r in self.results if r["section"] == section]

    def one(self, section: str) -> dict[str, Any] | None:
        found = self.all(section)
        return found[-1] if found else None

    def add(self, what: str, figure: str, target: str, ok: bool | None, load: str) -> None:
        self.summary.append((what, figure, target, _verdict(ok), load))

    def lines(self, *text: str) -> None:
        self.body.extend(text)

    # ------------------------------------------------------------ sections

    def time_to_first_action(self) -> None:
        self.lines("## 1. Time to first action", "")
        entry = self.one("time_to_first_action")
        if entry is None:
            self.lines(NOT_RUN, "")
            self.add("1. time to first action (rollback)", NOT_RUN, "p95 < 250 ms", None, "")
            return
        self.lines(
            f"Incident created → its target's new generation seen by a watch; {entry['repeats']} "
            "repeats per column, interleaved. Floor: one direct PATCH (a template annotation) "
            "from the Python client. Runbook: the guide's command run by a script with the "
            "built kubectl (process start, discovery, reads and the write). median / p95.",
            "",
            "| action | operator | floor (PATCH) | runbook (kubectl) | × floor (median) "
            "| × floor (p95) | × runbook (median) |",
            "|---|---|---|---|---|---|---|",
        )
        for row in entry["rows"]:
            self.lines(
                f"| {row['action']} | {_ms(row['operator'])} | {_ms(row['floor'])} | "
                f"{_ms(row['runbook'])} | {row['ratio_to_floor_median']} | "
                f"{row['ratio_to_floor_p95']} | {row['ratio_to_runbook_median']} |"
            )
        self.lines("", f"Load average (1/5/15 min) at the end: {_load_note(entry)}.", "")
        rollback = next(r for r in entry["rows"] if r["action"] == "rollback")
        p95 = rollback["operator"]["p95_ms"]
        ratio = rollback["ratio_to_floor_median"]
        self.add(
            "1. time to first action, rollback",
            f"{_ms(rollback['operator'])} (p50/p95), {ratio}× floor",
            "p95 < 250 ms; ≤ 5× floor",
            p95 is not None and p95 < 250 and ratio is not None and ratio <= 5,
            _load_note(entry),
        )

    def alert_to_action(self) -> None:
        self.lines("## 2. Alert to action", "")
        entry = self.one("alert_to_action")
        if entry is None:
            self.lines(NOT_RUN, "")
            self.add("2. alert to action", NOT_RUN, "(none)", None, "")
            return
        configured = entry["configured"]
        waits = ", ".join(f"{k}: {v}" for k, v in configured["alertmanager_group_wait"].items())
        fors = ", ".join(f"{k} {v}" for k, v in configured["rule_for"].items())
        self.lines(
            "The operator's bridge receives an Alertmanager webhook (posted by the benchmark, "
            "as Alertmanager would) → its target's new generation seen by a watch. "
            f"median / p95 over {entry['bridge_to_action']['n']} alerts:",
            "",
            f"- webhook → first action: **{_ms(entry['bridge_to_action'])}** "
            f"({entry['ratio_to_floor_median']}× the floor's median)",
            f"- webhook → bridge's answer (Incident created): {_ms(entry['bridge_answer'])}",
            "",
            "Before the webhook, and not speed but configuration (manifests/): Alertmanager's "
            f"`group_wait` ({waits}) and each rule's `for:` ({fors}). A HighErrorRate alert "
            "therefore reaches the operator 2 min 10 s after the error rate crosses 5% (plus "
            "Prometheus's evaluation interval), and is acted on within the figure above.",
            "",
            f"Load average at the end: {_load_note(entry)}.",
            "",
        )
        self.add(
            "2. alert (webhook) to action",
            _ms(entry["bridge_to_action"]),
            "(reported; + group_wait + for:)",
            None,
            _load_note(entry),
        )

    def scenarios_section(self) -> None:
        self.lines("## 3. Detection to Resolved, per runbook scenario", "")
        if not self.scenarios:
            self.lines(NOT_RUN, "")
            self.add("3. detection to resolved", NOT_RUN, "(reported)", None, "")
            return
        self.lines(
            "tests/e2e/test_scenarios.py on the simulated service, with the shipped rules on a "
            "compressed clock (`for:` 8-10 s), scrape and evaluation every 1 s, Alertmanager "
            "group_wait 1 s. Time starts when the Incident is detected. Each scenario runs "
            "once per `make bench` (no percentile: one sample). The verification window "
            f"({SCENARIO_WINDOW_S:.0f} s in the demo policy) is policy, shown apart.",
            "",
            "| scenario | final phase | detection → first action | detection → resolved "
            "| of which verification window | resolved minus window |",
            "|---|---|---|---|---|---|",
        )
        for row in self.scenarios:
            action, resolved = row["alert_to_first_action_s"], row["alert_to_resolution_s"]
            rest = f"{resolved - SCENARIO_WINDOW_S:.1f} s" if resolved is not None else "—"
            self.lines(
                f"| {row['scenario']} | {row['phase']} | "
                f"{'—' if action is None else f'{action} s'} | "
                f"{'—' if resolved is None else f'{resolved} s'} | "
                f"{'—' if resolved is None else f'{SCENARIO_WINDOW_S:.0f} s'} | {rest} |"
            )
        self.lines("")
        resolved = [
            r["alert_to_resolution_s"] for r in self.scenarios if r["alert_to_resolution_s"]
        ]
        self.add(
            "3. detection to resolved (scenarios)",
            f"{min(resolved):.1f}–{max(resolved):.1f} s" if resolved else "none resolved",
            "(reported)",
            None,
            "",
        )

    def scale(self) -> None:
        self.lines("## 4. Scale, and 5. memory", "")
        entries = self.all("scale")
        if not entries:
            self.lines(NOT_RUN, "")
            self.add("4. scale, 1,000 incidents", NOT_RUN, "all mitigated; p95 < 5 s", None, "")
            return
        self.lines(
            "N Incidents created at once (24 client threads) on N Deployments (no pods; the "
            "policy does not require ready pods), each a restart; a fresh operator per N "
            "(benchmarks/test_4_scale.py says why a restart and no pods: the controller-manager "
            "here syncs about 5 Deployments a second). Time to first action per Incident runs "
            "from just before its own create to the target's new generation. Resolution waits "
            "for each restart's rollout, so it mostly measures the controller-manager; it is "
            "cut off after 4 minutes and the final phases say how far it got. RSS of the "
            "operator process (/proc/PID/status VmRSS): idle with the N Deployments, peak "
            "during the burst (N open Incidents), and settled after the resolution wait. "
            "Requests per Incident: every client's (the controllers' reaction included), from "
            "apiserver_request_total.",
            "",
            "| N | creates took | acted | last action after burst start | mitigated/s "
            "| TTFA p50 | TTFA p95 | resolution wait | final phases | RSS idle | RSS peak "
            "| RSS after | requests/Incident (w/l/g) | load |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        )
        for e in entries:
            req = e["requests_per_incident"]
            self.lines(
                f"| {e['incidents']} | {e['creates_s']} s | {e['acted']} | "
                f"{e['last_action_after_burst_s']} s | {e['mitigated_per_s']} | "
                f"{e['ttfa_p50_ms']} ms | {e['ttfa_p95_ms']} ms | {e['all_resolved_s']} s | "
                f"{', '.join(f'{k} {v}' for k, v in e['phases'].items())} | "
                f"{e['rss_idle_mib']} MiB | {e['rss_peak_mib']} MiB | {e['rss_after_mib']} MiB | "
                f"{req['writes']}/{req['lists']}/{req['gets']} | {_load_note(e)} |"
            )
        self.lines("")
        waits = [e for e in entries if e.get("handler_queue_wait")]
        if waits:
            self.lines(
                "Time queued work waited for one of the operator's 32 handler threads during "
                "the burst (its `mitigator_handler_queue_wait_seconds`, read when the last "
                "Incident had been acted on): a new Incident's first tick goes before the "
                "others' re-checks (`handlers/first_ticks_first.py`). p50 / p95 (count):",
                "",
            )
            for e in waits:
                parts = [
                    f"{work.replace('_', ' ')} {w['p50_ms']} / {w['p95_ms']} ms ({w['count']})"
                    for work, w in sorted(e["handler_queue_wait"].items())
                ]
                self.lines(f"- N = {e['incidents']}: {'; '.join(parts)}")
            self.lines("")
        biggest = max(entries, key=lambda e: e["incidents"])
        n = biggest["incidents"]
        errors = sum(v for k, v in biggest["phases"].items() if k in ("Failed", "Escalated"))
        all_ok = biggest["acted"] == n and errors == 0
        p95 = biggest["ttfa_p95_ms"]
        self.add(
            f"4. scale, {n} incidents",
            f"{biggest['acted']}/{n} acted, {errors} failed/escalated, "
            f"{biggest['phases'].get('Resolved', 0)} resolved in {biggest['all_resolved_s']} s, "
            f"p95 {p95} ms, {biggest['mitigated_per_s']}/s",
            "all mitigated, no errors, p95 < 5 s",
            all_ok and p95 is not None and p95 < 5000,
            _load_note(biggest),
        )
        idle, peak, after = (
            biggest["rss_idle_mib"],
            biggest["rss_peak_mib"],
            biggest["rss_after_mib"],
        )
        self.add(
            f"5. memory at {n} incidents",
            f"idle {idle}, peak {peak}, after {after} MiB",
            "< 150 MB at 1,000; back to idle",
            peak * 1.048576 < 150 and after <= idle * 1.1,
            _load_note(biggest),
        )

    def api_cost(self) -> None:
        self.lines("## 6. API cost", "")
        entry = self.one("api_cost_rollback")
        if entry is None:
            self.lines(NOT_RUN, "")
            self.add("6. API cost per rollback", NOT_RUN, "≤ 6 writes, no LIST", None, "")
        else:
            self.lines(
                "From the API server's own `apiserver_request_total`, which does not say who "
                f"sent a request. So: {entry['rollbacks']} rollbacks by the operator (Incident "
                "created → Resolved) in one window, the same rollbacks as direct PATCHes in a "
                f"window of the same length ({entry['window_s']} s), and the difference per "
                "rollback (the user's create of the Incident taken out, the rollback write "
                "itself counted once). Small fractions are the controllers' noise.",
                "",
                "| request | per rollback |",
                "|---|---|",
                *(f"| {k} | {v} |" for k, v in entry["per_rollback"].items()),
                "",
                f"Totals per rollback: {entry['totals']['writes']} writes, "
                f"{entry['totals']['lists']} LISTs, {entry['totals']['gets']} GETs. "
                f"Load average: {_load_note(entry)}.",
                "",
            )
            totals = entry["totals"]
            self.add(
                "6. API cost per rollback",
                f"{totals['writes']} writes, {totals['lists']} LISTs, {totals['gets']} GETs",
                "≤ 6 writes, no LIST",
                totals["writes"] <= 6.5 and totals["lists"] < 0.5,
                _load_note(entry),
            )
        waiting = self.one("api_cost_waiting")
        if waiting is None:
            self.add("6. API cost per waiting tick", NOT_RUN, "0", None, "")
            self.verifying_cost()
            return
        self.lines(
            f"An Incident waiting for a slot (maxConcurrentMitigations reached): "
            f"{waiting['waiting_incidents']} waiting Incidents over {waiting['window_s']:.0f} s "
            f"(tick {waiting['tick_s']} s), against the same window without them; requests "
            "per waiting Incident per tick:",
            "",
            "| request | per waiting tick |",
            "|---|---|",
            *(f"| {k} | {v} |" for k, v in waiting["per_waiting_tick"].items()),
            "",
            f"Total: {waiting['total_per_waiting_tick']} per tick.",
            "",
        )
        total = waiting["total_per_waiting_tick"]
        self.add(
            "6. API cost per waiting tick",
            f"{total} requests",
            "0",
            abs(total) < 0.1,
            _load_note(waiting),
        )
        self.verifying_cost()

    def verifying_cost(self) -> None:
        entry = self.one("api_cost_verifying")
        if entry is None:
            self.add("6. Status writes per verifying tick", NOT_RUN, "0", None, "")
            return
        refresh, tick = entry["refresh_s"], entry["tick_s"]
        # The refreshes a long window adds at most (0: every tick is written).
        bound = tick / refresh if refresh else 1.0
        self.lines(
            f"An Incident in its verification window (every check passing, the observed p95 "
            f"moving each tick, the window 4 min): {entry['verifying_incidents']} of them over "
            f"{entry['window_s']:.0f} s (tick {tick} s; {entry['still_verifying']} still "
            "verifying at its end), against the same window without them; requests per "
            "verifying Incident per tick:",
            "",
            "| request | per verifying tick |",
            "|---|---|",
            *(f"| {k} | {v} |" for k, v in entry["per_verifying_tick"].items()),
            "",
            f"Status writes per tick: {entry['status_writes_per_tick']}. A window writes when "
            "a check's verdict changes, evidence goes missing or comes back, it opens or it "
            f"reaches its verdict; otherwise its observed values every {refresh:.0f} s at most "
            f"(`MITIGATOR_VERIFICATION_REFRESH_SECONDS`): at most {bound:.3f} writes per tick "
            "over a window longer than this measurement.",
            "",
        )
        writes = entry["status_writes_per_tick"]
        self.add(
            "6. Status writes per verifying tick",
            f"{writes} writes",
            f"≤ {bound:.3f} (tick / refresh)",
            writes <= bound + 0.02,
            _load_note(entry),
        )

    def unrelated(self) -> None:
        self.lines("## 7. Unrelated objects", "")
        entry = self.one("unrelated")
        if entry is None:
            self.lines(NOT_RUN, "")
            self.add("7. unrelated objects", NOT_RUN, "RSS +≤ 20%, not slower", None, "")
            return
        a, c = entry["alone"], entry["crowded"]
        self.lines(
            f"The same namespace, a fresh operator each time: alone, then with "
            f"{entry['unrelated_deployments']:,} other Deployments (another app's, no pods) "
            f"and {entry['resolved_incidents']:,} resolved Incidents (created while no operator "
            f"ran, in {entry['setup_s']} s; written `settled`, as this build leaves an Incident "
            f"that owes no notice, so its watch leaves them out). Probes: rollbacks one at a "
            f"time. RSS settled: after "
            f"the operator's first malloc trim (30 s after its start); after probes: after the "
            f"next trim.",
            "",
            "| | RSS settled | RSS after probes | start → first action | rollback TTFA |",
            "|---|---|---|---|---|",
            f"| alone | {a['rss_mib']} MiB | {a['rss_after_probes_mib']} MiB | "
            f"{a['first_action_after_start_s']} s | {_ms(a['ttfa'])} |",
            f"| crowded | {c['rss_mib']} MiB | {c['rss_after_probes_mib']} MiB | "
            f"{c['first_action_after_start_s']} s | {_ms(c['ttfa'])} |",
            "",
            f"RSS growth: {entry['rss_growth_pct']}%; median TTFA ratio: "
            f"{entry['ttfa_median_ratio']}. Load average: {_load_note(entry)}.",
            "",
        )
        ratio = entry["ttfa_median_ratio"]
        self.add(
            "7. unrelated objects (5,000 + 5,000)",
            f"RSS +{entry['rss_growth_pct']}%, TTFA ×{ratio}",
            "RSS +≤ 20%, not slower",
            entry["rss_growth_pct"] <= 20 and ratio is not None and ratio <= 1.25,
            _load_note(entry),
        )

    def bridge(self) -> None:
        self.lines("## 8. Bridge", "")
        entry = self.one("bridge_burst")
        if entry is None:
            self.lines(NOT_RUN, "")
        else:
            self.lines(
                "1,000 distinct alerts (1,000 groups) posted to `mitigator bridge` (its own "
                f"process) with {entry['senders']} requests in flight; one in 20 names no "
                "Deployment. Every alert accounted for (asserted). Then the same payloads again "
                "(Alertmanager's next group_interval): all `unchanged`. One run per row, after "
                "an unrecorded warm-up round.",
                "",
                "| bridge concurrency | Incidents | unmapped | wall time | alerts/s "
                "| p50 request | p95 request | resend |",
                "|---|---|---|---|---|---|---|---|",
            )
            for row in entry["rows"]:
                mark = " (default)" if row["default"] else ""
                self.lines(
                    f"| {row['concurrency']}{mark} | {row['created']} | {row['unmapped']} | "
                    f"**{row['wall_s']} s** | {row['alerts_per_s']} | {row['p50_request_ms']} ms "
                    f"| {row['p95_request_ms']} ms | {row['resend_s']} s |"
                )
            self.lines("", f"Load average: {_load_note(entry)}.", "")
            default = next((r for r in entry["rows"] if r["default"]), entry["rows"][0])
            self.add(
                "8. bridge, 1,000 alerts",
                f"{default['wall_s']} s at concurrency {default['concurrency']}",
                "< 10 s",
                default["wall_s"] < 10,
                _load_note(entry),
            )
        big = self.one("bridge_big_groups")
        if big is None:
            self.add("8. bridge, 10,000 alerts / 10 groups", NOT_RUN, "all accepted", None, "")
            return
        self.lines(
            f"{big['alerts']:,} alerts in {big['groups']} groups (one webhook each, "
            f"{big['payload_bytes'] / 1024:.0f} KiB the largest): answers {big['statuses']}, "
            f"{big['incidents']} Incidents, each recording {big['recorded_alerts_per_incident']} "
            f"alerts (the cap); {big['wall_s']} s, resent in {big['resend_s']} s. Bridge RSS: "
            f"idle {big['rss_idle_mib']} MiB, peak {big['rss_peak_mib']} MiB, after "
            f"{big['rss_after_mib']} MiB.",
            "",
        )
        self.add(
            "8. bridge, 10,000 alerts / 10 groups",
            f"{big['wall_s']} s, RSS peak {big['rss_peak_mib']} MiB",
            "all accepted",
            big["statuses"] == [200] and big["incidents"] == big["groups"],
            _load_note(big),
        )

    # ------------------------------------------------------------ the page

    def render(self) -> str:
        self.time_to_first_action()
        self.alert_to_action()
        self.scenarios_section()
        self.scale()
        self.api_cost()
        self.unrelated()
        self.bridge()
        loads = [r["loadavg"][0] for r in self.results if r.get("loadavg")]
        head = [
            "# Benchmarks",
            "",
            "`make bench` measures these on the local control plane (kube-apiserver "
            f"{KUBERNETES_VERSION}, etcd {ETCD_VERSION}, controller-manager, scheduler, kwok "
            "fake nodes), with the operator run as its own process (`mitigator run`, its own "
            "ServiceAccount, production tick of 2 s), and rewrites this page. Nothing here is "
            "asserted by the test suite; `make test` does not collect `benchmarks/`.",
            "",
            f"Last run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}: "
            f"{os.cpu_count()} cores, {_cpu()}, Python {platform.python_version()}. The control "
            "plane, the operator and the load generator share those cores.",
            "",
        ]
        if loads:
            head += [
                f"**Measured under load.** The 1-minute load average during the run went from "
                f"{min(loads):.1f} to {max(loads):.1f} on {os.cpu_count()} cores (other work "
                "shared the machine); each figure carries the load beside it. Read the "
                "figures as orders of magnitude and the ratios (measured in the same run, under "
                "the same load) as the comparison, not the milliseconds to the digit.",
                "",
            ]
        run = self.one("bench_run")
        if run is not None:
            minutes = run["seconds"] / 60
            head += [
                f"`make bench` took {minutes:.1f} minutes (target: under 15), in two lanes on "
                "control planes of their own (the Makefile says which figures share a lane).",
                "",
            ]
            self.add("`make bench` run time", f"{minutes:.1f} min", "< 15 min", minutes < 15, "")
        head += [
            "## Summary",
            "",
            "| measurement | figure | target | verdict | load (1/5/15 min) |",
            "|---|---|---|---|---|",
            *(f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in self.summary),
            "",
        ]
        return "\n".join([*head, *self.body]).rstrip() + "\n"

    def table(self) -> str:
        width = max(len(row[0]) for row in self.summary)
        return "\n".join(
            f"{a:<{width}}  {d:<11} {b}  (target: {c})" for a, b, c, d, _ in self.summary
        )


START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def main(results: str, scenarios: str, destination: str) -> int:
    """Replace the figures between the markers; the prose around them (what was fixed, what
    is still missed and why) is written by people and kept."""
    report = Report(_load(results), _load(scenarios))
    figures = f"{START}\n{report.render()}{END}"
    page = Path(destination)
    text = page.read_text() if page.exists() else ""
    if START in text and END in text:
        text = text[: text.index(START)] + figures + text[text.index(END) + len(END) :]
    else:
        text = figures + "\n"
    page.write_text(text)
    print(report.table())
    print(f"\nwritten to {destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
