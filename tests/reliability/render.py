"""Regenerate the figures in docs/reliability.md from the suite's last results file.

    .venv/bin/python -m pytest -q tests/reliability
    .venv/bin/python -m tests.reliability.render

The suite writes build/reliability/results.json (or $CONVEX_MASTRA_RELIABILITY_RESULTS) at the
end of every run; this replaces the text between the figure markers of docs/reliability.md with
tables made from it. ``--check`` only reports whether the page is up to date with the file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(
    os.environ.get("CONVEX_MASTRA_RELIABILITY_RESULTS", ROOT / "build/reliability/results.json")
)
DOC = ROOT / "docs" / "reliability.md"
BEGIN = "<!-- reliability-figures:begin -->"
END = "<!-- reliability-figures:end -->"

SCENARIOS: dict[str, tuple[str, dict[str, str]]] = {
    "crash": (
        "Crash (SIGKILL mid-run, restart on the same data directory)",
        {
            "saves_attempted": "message saves attempted (`messages.save` calls)",
            "messages_attempted": "messages in those saves",
            "tasks": "concurrent tasks on one store",
            "kills": "SIGKILLs",
            "killed_after_acknowledged": "killed once this many saves were acknowledged",
            "acknowledged": "saves acknowledged",
            "acknowledged_after_restart": "… of which after the restart, same store object",
            "acknowledged_found_after_restart": "acknowledged saves found complete afterwards",
            "acknowledged_lost": "acknowledged saves lost",
            "failed_unavailable": "saves failed with DeploymentUnavailable",
            "failed_but_applied_whole": "… of which had committed whole before the kill",
            "partially_written": "saves found partially written",
            "messages_found_after_restart": "messages found after the restart",
            "timed_out": "calls that ran into the request timeout (hung)",
            "outage_probe_calls": "calls made while the deployment was down",
            "outage_slowest_failure_ms": "… slowest of them to fail (ms)",
            "failed_save_slowest_ms": "slowest failed save, in flight before the kill (ms)",
            "request_timeout_ms": "request timeout (ms)",
            "resaved_after_restart": "failed saves sent again through the same store",
            "messages_at_end": "messages stored at the end (all of them)",
        },
    ),
    "slow_dead": (
        "Slow and dead servers",
        {
            "request_timeout_ms": "request timeout (ms)",
            "max_concurrency": "store max_concurrency",
            "never_answers_calls": "calls to a server that never answers",
            "never_answers_timeouts": "… ended by RequestTimeoutError",
            "never_answers_fastest_ms": "… fastest (ms)",
            "never_answers_median_ms": "… median (ms)",
            "never_answers_slowest_ms": "… slowest (ms)",
            "heartbeat_ticks": "heartbeat ticks meanwhile (10 ms interval)",
            "heartbeat_worst_gap_ms": "longest heartbeat gap (ms)",
            "stall_elapsed_ms": "answer stalled after 12 bytes: call ended after (ms)",
            "stall_writes_applied_once": "… write applied on the deployment (times)",
            "trickle_elapsed_ms": "answer trickling 1 byte / 50 ms: call ended after (ms)",
            "trickle_writes_applied_once": "… write applied on the deployment (times)",
            "reset_read_attempts": "connection reset on accept: attempts for a read",
            "reset_write_attempts": "… attempts for a write (resent only if provably unsent)",
            "reset_read_failed_ms": "… read failed after (ms)",
            "reset_write_failed_ms": "… write failed after (ms)",
            "slow_deployment_delay_ms": "deployment answering late by (ms)",
            "slow_deployment_elapsed_ms": "… call ended after (ms)",
            "slow_deployment_heartbeat_worst_gap_ms": "… longest heartbeat gap (ms)",
        },
    ),
    "concurrency": (
        "Concurrency",
        {
            "thread_updates_attempted": "concurrent metadata updates on one thread",
            "thread_updates_acknowledged": "… acknowledged",
            "thread_keys_found": "… distinct keys found afterwards",
            "resource_updates_attempted": "concurrent updates on one (new) resource",
            "resource_updates_acknowledged": "… acknowledged",
            "resource_keys_found": "… distinct keys found afterwards",
            "resource_rows": "… resource rows created",
            "message_writers": "tasks saving messages to one thread",
            "message_saves_attempted": "… saves",
            "message_saves_acknowledged": "… acknowledged",
            "messages_saved": "… messages",
            "messages_found": "… messages found",
            "listings_compared": "listings compared for one stable order",
        },
    ),
    "bad_input": (
        "Bad input (property-based)",
        {
            "examples_per_property": "generated inputs per property (plus named examples)",
        },
    ),
    "hostile": (
        "Hostile input",
        {
            "ids_tried": "hostile ids tried",
            "ids_stored_and_found_exactly": "… stored and found under exactly that id",
            "ids_refused_as_blank": "… refused as blank (ValidationError)",
            "canary_records": "canary records under look-alike ids",
            "canaries_changed": "… changed",
            "table_names_tried": "hostile logical table names",
            "table_names_isolated": "… whose records stayed their own",
            "documents_domain_names_used": "… usable through store.documents",
            "documents_domain_names_refused": "… refused by store.documents (typed names)",
            "cache_keys_tried": "hostile cache keys",
            "cache_keys_stored": "… each stored and read back under itself",
            "cache_keys_refused": "… refused",
            "malformed_requests_tried": "malformed HTTP requests",
            "malformed_requests_refused_4xx": "… refused with a 4xx",
            "malformed_requests_function_error": "… refused as a function error",
            "malformed_requests_handler_refused": "… refused by the handler (`ok: false`)",
            "malformed_requests_succeeded": "… run",
            "server_errors": "… answered with a 5xx",
            "deployment_restarts": "deployment process restarts or crashes",
        },
    ),
    "security": (
        "Security",
        {
            "functions_listed": "functions the deployment lists",
            "internal_functions": "… internal",
            "public_functions": "… public (authenticated entry points)",
            "source_files_checked": "TypeScript sources checked for public constructors",
            "unauthorized_sdk_calls": "calls without the admin key (3 kinds of caller)",
            "unauthorized_sdk_calls_refused": "… refused",
            "unauthorized_raw_requests": "raw HTTP requests with wrong or odd credentials",
            "unauthorized_raw_requests_refused": "… refused",
            "canaries_changed": "records changed by them",
            "wrong_keys_refused_by_deployment": "wrong admin keys refused by the deployment",
            "wrong_keys_refused_locally": "text that cannot be a key, refused before sending",
            "http_urls_refused": "http:// URLs to non-loopback hosts refused",
            "http_urls_accepted_loopback": "http:// URLs to loopback hosts accepted",
            "secrets_tracked": "admin keys tracked by the audit",
            "log_records_checked": "log records checked (every logger, DEBUG and up)",
            "exception_texts_checked": "exception texts checked (str, repr, traceback, chain)",
            "reprs_checked": "reprs checked",
            "server_logs_checked": "server logs checked",
            "texts_checked": "texts checked in all",
            "secrets_found": "admin keys found in any of them",
        },
    ),
}

BAD_INPUT_PROPERTIES = {
    "thread_save": "threads.save metadata",
    "thread_update": "threads.update metadata",
    "resource_update": "resources.update metadata",
    "message_save": "messages.save content",
    "workflow_snapshot": "workflows.persist_snapshot snapshot",
    "document_record": "documents.insert record",
    "score": "scorers.save input, output, metadata",
    "cache_value": "ConvexServerCache.set value",
}


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(f"`{v}`" if isinstance(v, str) else str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(rows: list[tuple[str, Any]]) -> list[str]:
    lines = ["| figure | value |", "|---|---:|"]
    lines += [f"| {label} | {_value(value)} |" for label, value in rows]
    return lines


def _bad_input(figures: dict[str, Any]) -> list[str]:
    lines = [
        "| property | inputs tried | stored, read back equal | refused before writing "
        "| RecordTooLargeError |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in BAD_INPUT_PROPERTIES.items():
        if f"{key}_tried" in figures:
            lines.append(
                f"| {label} | {_value(figures[f'{key}_tried'])} "
                f"| {_value(figures[f'{key}_stored'])} | {_value(figures[f'{key}_refused'])} "
                f"| {_value(figures[f'{key}_too_large'])} |"
            )
    rest = [
        (label, figures[key]) for key, label in SCENARIOS["bad_input"][1].items() if key in figures
    ]

    def offset_of(key: str) -> int:
        sign, amount = key.split("_")[1:]
        return int(amount) * (1 if sign == "plus" else -1)

    boundary = sorted((k for k in figures if k.startswith("boundary_")), key=offset_of)
    for key in boundary:
        offset = f"{offset_of(key):+d}"
        rest.append((f"message at 1 MiB {offset} bytes, in the 2nd call of one save", figures[key]))
    if "huge_payloads_refused" in figures:
        rest.append(
            ("17 MiB payloads refused as RecordTooLargeError", figures["huge_payloads_refused"])
        )
    return [*lines, "", *_table(rest)] if rest else lines


def render(results: dict[str, Any]) -> str:
    tests = results.get("tests", {})
    failed = sorted(node for node, t in tests.items() if t["outcome"] not in ("passed",))
    out = [
        BEGIN,
        "",
        f"Generated by `python -m tests.reliability.render` from the run of "
        f"{results['generated']} (commit `{results['commit']}`, Python {results['python']}, "
        f"{results['platform']}{', soak' if results.get('soak') else ''}): "
        f"{len(tests)} tests, {len(tests) - len(failed)} passed, "
        f"{results['wall_seconds']} s from the first test to the last.",
        "",
        f"Command: `{results['command']}`",
        "",
    ]
    if failed:
        out += ["Not passed in that run:", "", *[f"- `{node}`" for node in failed], ""]
    scenarios: dict[str, dict[str, Any]] = results.get("scenarios", {})
    for key, (title, labels) in SCENARIOS.items():
        figures = scenarios.get(key)
        if not figures:
            out += [f"### {title}", "", "_not run_", ""]
            continue
        out += [f"### {title}", ""]
        if key == "bad_input":
            out += _bad_input(figures)
        else:
            rows = [(label, figures[name]) for name, label in labels.items() if name in figures]
            rows += [(name, value) for name, value in figures.items() if name not in labels]
            out += _table(rows)
        seconds = sum(t["seconds"] for node, t in tests.items() if _module_of(key) in node)
        out += ["", f"Tests of this scenario took {seconds:.1f} s.", ""]
    out.append(END)
    return "\n".join(out)


def _module_of(scenario: str) -> str:
    return {
        "crash": "test_crash.py",
        "slow_dead": "test_slow_server.py",
        "concurrency": "test_concurrency.py",
        "bad_input": "test_bad_input",
        "hostile": "test_hostile_input.py",
        "security": "test_security.py",
    }[scenario]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    args = parser.parse_args(argv)
    results = orjson.loads(args.results.read_bytes())
    page = DOC.read_text(encoding="utf-8")
    start, end = page.index(BEGIN), page.index(END) + len(END)
    updated = page[:start] + render(results) + page[end:]
    if args.check:
        if updated != page:
            print(f"{DOC} is not up to date with {args.results}", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(updated, encoding="utf-8")
    print(f"updated {DOC.relative_to(ROOT)} from {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
