"""The `syncd` command."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from syncd import plugins
from syncd.cli_support import config_option, load_or_exit, setup_logging
from syncd.clock import SystemClock, to_ms
from syncd.config import Config
from syncd.errors import ConfigError
from syncd.mapping.loader import MappingError, load_rules
from syncd.mapping.model import json_schema
from syncd.mapping.planner import Change, explain_change, plan_event_file
from syncd.store import actions as outbox
from syncd.store import inbox as deliveries
from syncd.store.actions import ActionRow
from syncd.store.db import open_store

# Shared with the connectors' commands; the short names keep this file readable.
_load = load_or_exit
_setup_logging = setup_logging


class _SyncdGroup(click.Group):
    """Commands of the engine, plus each connector's own (`syncd github redeliver`), found
    through the connector's `cli` attribute, plus those of other distributions (the sandbox's
    `syncd demo`, see syncd.plugins); all loaded only when called."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from syncd import connector as registry

        return sorted(
            set(super().list_commands(ctx)) | set(registry.available()) | plugins.command_names()
        )

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        if cmd_name in plugins.command_names():
            return plugins.load_command(cmd_name)
        from syncd import connector as registry

        if cmd_name not in registry.available():
            return None
        group = getattr(registry.load_class(cmd_name), "cli", None)
        return group if isinstance(group, click.Command) else None

    def invoke(self, ctx: click.Context) -> object:
        from syncd.store.db import StoreUnreadable

        try:
            return super().invoke(ctx)
        except StoreUnreadable as exc:  # any command: the file and the recovery, no traceback
            click.echo(f"error: {exc}", err=True)
            raise click.exceptions.Exit(2) from None
        except (ConfigError, MappingError) as exc:  # a command that did not say it itself
            click.echo(f"error: {exc}", err=True)
            raise click.exceptions.Exit(2) from None


@click.group(cls=_SyncdGroup)
@click.version_option(package_name="syncd")
@click.pass_context
def main(ctx: click.Context) -> None:
    """syncd keeps HubSpot, Airtable, GitHub, Jira and email in step."""
    from syncd.cli_host import EngineCommands

    if ctx.obj is None:  # what a connector's command gets through `syncd.sdk.pass_host`
        ctx.obj = EngineCommands()


def _unsafe_files(config: Config) -> list[str]:
    """The file modes `syncd run` refuses to start with (syncd.permissions), each a sentence
    with its fix; none for a config given by no file."""
    if config.path is None:
        return []
    from syncd.permissions import check_file_permissions

    return check_file_permissions(config.path, config.mapping_paths, config.secret_files)


@main.command()
@config_option
def check(config_path: str | None) -> None:
    """Check the config, the mapping files and their examples; list every problem."""
    config = _load(config_path)
    _setup_logging(config, quiet=True)
    from syncd.engine import build_connectors, check_rules_against_config, missing_secrets
    from syncd.webhook_checks import unsigned_warnings

    unsafe = _unsafe_files(config)  # `syncd run` refuses to start over these: errors here too
    for problem in unsafe:
        click.echo(problem, err=True)

    missing = missing_secrets(config)
    for problem in [*missing, *unsigned_warnings(config.connectors)]:
        click.echo(f"warning: {problem}", err=True)
    # Without credentials, the checks against the live account are skipped, with a warning.
    unreachable: set[str] = {p[1 : p.index("]")] for p in missing}
    try:
        connectors = build_connectors(config, SystemClock())
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)

    from syncd.lookups import offline_aliases

    # Unreachable: the names the connector knows without its API (HubSpot's stage ids of
    # its default pipelines), as `explain` and `simulate` use them.
    offline = offline_aliases(None, config.connectors)

    def aliases(source: str, obj: str, field: str) -> dict[str, str]:
        conn = connectors.get(source)
        if conn is None or source in unreachable:
            return dict(offline(source, obj, field))
        try:
            return conn.value_aliases(obj, field)
        except Exception as exc:  # warn once per source, not once per rule
            unreachable.add(source)
            click.echo(f"warning: {source}: value names not checked ({exc})", err=True)
            return dict(offline(source, obj, field))

    try:
        rules = load_rules(config.mapping_paths, aliases=aliases, vars=config.syncd.vars)
    except MappingError as exc:
        for found in exc.problems:
            click.echo(str(found), err=True)
        click.echo(f"{len(exc.problems) + len(unsafe)} problem(s) found", err=True)
        sys.exit(1)
    problems = check_rules_against_config(rules, connectors)
    for name, conn in sorted(connectors.items()):
        if name in unreachable:
            click.echo(
                f"warning: {name}: live checks skipped (no credentials or API unreachable)",
                err=True,
            )
            for warning in conn.check_mapping_offline(rules):
                click.echo(f"warning: [{name}] {warning}", err=True)
            continue
        try:
            problems += [f"[{name}] {p}" for p in conn.check_mapping(rules)]
        except Exception as exc:  # no credentials, API down: a warning, not a failure
            click.echo(f"warning: {name}: live checks skipped ({exc})", err=True)
    for p in problems:
        click.echo(p, err=True)
    if problems or unsafe:
        click.echo(f"{len(problems) + len(unsafe)} problem(s) found", err=True)
        sys.exit(1)
    examples = sum(len(r.rule.examples) for r in rules.rules)
    click.echo(
        f"ok: {len(rules.rules)} rules in {len(rules.files)} files, "
        f"{examples} examples passed, connectors: {', '.join(sorted(connectors))}"
    )


@main.command()
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="write the schema to this file instead of standard output",
)
def schema(output: str | None) -> None:
    """Print the JSON Schema of mapping files (for editors)."""
    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if output:
        Path(output).write_text(text)
    else:
        click.echo(text, nl=False)


def _read_event(path: str) -> Change:
    from ruamel.yaml import YAML

    text = Path(path).read_text()
    data = json.loads(text) if path.endswith(".json") else YAML(typ="safe").load(text)
    try:
        return Change.from_dict(data)
    except (KeyError, TypeError, AttributeError) as exc:
        raise click.ClickException(
            f"{path}: an event needs source, object, id, fields (and previous): {exc}"
        ) from None


def _rules_for_dry_run(config: Config) -> Any:
    """The rules as production compiles them: stage labels through the names the daemon
    stored (when its store exists), else through what the connectors know offline."""
    from syncd.lookups import offline_aliases

    store = None
    url = config.store_url
    if not url.startswith("sqlite") or Path(url.split("///", 1)[-1]).exists():
        try:
            store = open_store(url)
        except Exception as exc:  # no store to read from: the offline names still apply
            click.echo(
                f"warning: store not read ({type(exc).__name__}); using the "
                "connectors' built-in value names",
                err=True,
            )
    try:
        return load_rules(
            config.mapping_paths,
            run_examples=False,
            aliases=offline_aliases(store, config.connectors),
            vars=config.syncd.vars,
        )
    except MappingError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if store is not None:
            store.dispose()


event_option = click.option(
    "--event",
    "event_path",
    required=True,
    type=click.Path(exists=True),
    help="a change as a JSON or YAML file (README: the event file; examples/won-deal.yaml)",
)


@main.command()
@config_option
@event_option
def simulate(config_path: str | None, event_path: str) -> None:
    """Dry run: the actions the rules would plan for a change, as JSON lines."""
    config = _load(config_path)
    rules = _rules_for_dry_run(config)
    for p in plan_event_file(rules, _read_event(event_path)).actions:
        click.echo(
            json.dumps(
                {
                    "rule": p.rule_id,
                    "action": p.name,
                    "key": p.key,
                    "params": p.params,
                    **({"error": p.error} if p.error else {}),
                },
                default=str,
                sort_keys=True,
            )
        )


@main.command()
@config_option
@event_option
def explain(config_path: str | None, event_path: str) -> None:
    """For each rule: fired, or the first reason it did not."""
    config = _load(config_path)
    rules = _rules_for_dry_run(config)
    for decision in explain_change(rules, _read_event(event_path)):
        mark = {"fired": "FIRED ", "render failed": "FAILED ", "condition error": "FAILED "}.get(
            decision.outcome, "-     "
        )
        extra = f" -> {', '.join(p.name for p in decision.actions)}" if decision.fired else ""
        click.echo(f"{mark}{decision.rule_id}: {decision.reason}{extra}")


@main.group(name="actions")
def actions_group() -> None:
    """Inspect and steer planned actions."""


def _find(conn: Any, ident: str) -> ActionRow:
    """An action by id (what alert mails print) or by a prefix of its key."""
    if ident.isdigit():
        exact = outbox.action_by_id(conn, int(ident))
        if exact is not None:
            return exact
    rows = outbox.actions_by_key_prefix(conn, ident)
    if not rows:
        raise click.ClickException(f"no action {ident!r}")
    if len(rows) > 1:
        raise click.ClickException(f"{ident!r} matches {len(rows)} actions; give more of the key")
    return rows[0]


@actions_group.command("list")
@config_option
@click.option("--status", default=None, help="pending, in_flight, done, dead, cancelled")
@click.option("--rule", default=None)
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line, for scripts")
def actions_list(
    config_path: str | None, status: str | None, rule: str | None, limit: int, as_json: bool
) -> None:
    """List actions, newest first: a table with the object's name and human times."""
    from syncd.console import presenters as show
    from syncd.store.console import recent_actions

    store = open_store(_load(config_path).store_url)
    rows = recent_actions(store, status, rule, limit)
    if as_json:
        for a in rows:
            out = {
                k: v
                for k, v in a.__dict__.items()
                if k not in ("params", "object_fields", "object_context")
            }
            click.echo(json.dumps({**out, "object_name": show.object_name(a.object_fields)}))
        return
    now = to_ms(SystemClock().now())
    click.echo(
        show.table(
            ["ID", "STATUS", "TRIES", "RULE", "DOES", "OBJECT", "CHANGED", "RESULT / ERROR"],
            [
                [
                    str(a.id),
                    a.status,
                    str(a.attempts),
                    a.rule_id,
                    f"{a.connector}.{a.action}",
                    show.object_label(a.source, a.object_type, a.object_id, a.object_fields)[:60],
                    show.ago(a.updated_at, now),
                    (a.external_url or a.external_id or a.last_error or "")[:80],
                ]
                for a in rows
            ],
            right=frozenset({0, 2}),
        )
    )


@actions_group.command("show")
@config_option
@click.argument("ident")
@click.option("--json", "as_json", is_flag=True, help="the stored row as JSON, for scripts")
def actions_show(config_path: str | None, ident: str, as_json: bool) -> None:
    """Everything about one action (by id or key prefix)."""
    from syncd.console import presenters as show
    from syncd.store.console import object_seen

    store = open_store(_load(config_path).store_url)
    with store.engine.connect() as conn:
        row = asdict(_find(conn, ident))
    if as_json:
        click.echo(json.dumps(row, indent=2, default=str))
        return
    now = to_ms(SystemClock().now())
    fields, context = (
        object_seen(store, row["source"], row["object_type"], row["object_id"])
        if row["source"]
        else ({}, {})
    )

    def when(ms: int | None) -> str:
        return f"{show.utc_text(ms)} ({show.ago(ms, now)})" if ms else "-"

    lines = [
        ("action", f"{row['id']}  {row['status']}"),
        ("rule", row["rule_id"]),
        ("does", f"{row['connector']}.{row['action']} ({row['guarantee']})"),
        ("object", show.object_label(row["source"], row["object_type"], row["object_id"], fields)),
        ("link", show.object_link(fields, context) or "-"),
        ("event", str(row["event_id"] or "-")),
        ("key", row["key"]),
        ("planned", when(row["created_at"])),
        ("changed", when(row["updated_at"])),
        ("attempts", str(row["attempts"])),
    ]
    if row["status"] in ("pending", "in_flight"):
        lines.append(
            ("next try", when(row["next_attempt_at"]) if row["next_attempt_at"] else "now")
        )
    if row["lease_owner"] and row["status"] == "in_flight":
        lines.append(("held by", f"{row['lease_owner']} until {when(row['lease_until'])}"))
    lines += [
        ("error", row["last_error"] or "-"),
        ("result", row["external_url"] or row["external_id"] or "-"),
    ]
    for label, text in lines:
        click.echo(f"{label + ':':<10} {text}")
    click.echo("params:")
    click.echo("  " + show.pretty(row["params"]).replace("\n", "\n  "))


def _set_status(config_path: str | None, ident: str, status: str, allowed: tuple[str, ...]) -> None:
    store = open_store(_load(config_path).store_url)
    now = to_ms(SystemClock().now())
    with store.tx() as conn:
        row = _find(conn, ident)
        if row.status not in allowed:
            raise click.ClickException(
                f"action {row.id} is {row.status}; only {'/'.join(allowed)} can be changed so"
            )
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if status == "pending":
            # due at once, whatever the clocks of the replicas say
            values.update(next_attempt_at=0, lease_until=None)
        outbox.update_action(conn, row.id, **values)
    click.echo(f"action {row.id} ({row.rule_id}) is now {status}")


@actions_group.command("retry")
@config_option
@click.argument("ident", required=False)
@click.option("--rule", default=None, help="every dead action of this rule")
@click.option(
    "--status",
    "status_",
    type=click.Choice(["dead", "cancelled"]),
    default=None,
    help="every action in this status",
)
@click.option("--since", default=None, help="only actions created since (YYYY-MM-DD or ISO)")
def actions_retry(
    config_path: str | None,
    ident: str | None,
    rule: str | None,
    status_: str | None,
    since: str | None,
) -> None:
    """Revive dead (or cancelled) actions: they run again, looking for their effect first.
    One whose template or condition failed is planned again with today's rules."""
    from syncd.mapping.conditions import as_datetime
    from syncd.replan import retry_action

    if ident is None and not (rule or status_ or since):
        raise click.UsageError("give an action id, or --rule, --status or --since")
    config = _load(config_path)
    _setup_logging(config, quiet=True)
    rules = _rules_for_dry_run(config)
    store = open_store(config.store_url)
    now = to_ms(SystemClock().now())
    with store.tx() as conn:
        if ident is not None:
            rows = [_find(conn, ident)]
        else:
            since_ms = None
            if since:
                moment = as_datetime(since)
                if moment is None:
                    raise click.BadParameter(f"not a date: {since!r}", param_hint="--since")
                since_ms = to_ms(moment)
            rows = outbox.list_actions(
                store,
                status=status_ or "dead",
                rule_id=rule or None,
                created_since_ms=since_ms,
                conn=conn,
            )
        for row in rows:
            click.echo(retry_action(store, conn, row, rules, now))
    click.echo(f"{len(rows)} action(s) looked at")


@actions_group.command("cancel")
@config_option
@click.argument("ident")
def actions_cancel(config_path: str | None, ident: str) -> None:
    """Cancel a pending or dead action."""
    _set_status(config_path, ident, "cancelled", ("pending", "dead"))


@main.group(name="inbox")
def inbox_group() -> None:
    """Inspect webhook deliveries, and send failed ones through again."""


@inbox_group.command("list")
@config_option
@click.option("--status", default="failed", show_default=True, help="pending, done, failed")
@click.option("--limit", default=50, show_default=True)
def inbox_list(config_path: str | None, status: str, limit: int) -> None:
    """Deliveries, newest first, with the reason for failed ones."""
    store = open_store(_load(config_path).store_url)
    for r in deliveries.list_deliveries(store, status, limit):
        click.echo(
            f"{r.id:>6} {r.connector:<9} {r.delivery_id[:36]:<36} "
            f"{r.status:<7} {r.attempts:>2} {r.last_error or ''}"
        )


@inbox_group.command("retry")
@config_option
@click.argument("delivery", type=int)
def inbox_retry(config_path: str | None, delivery: int) -> None:
    """Process a failed delivery again (after fixing its cause, e.g. a connector's config)."""
    store = open_store(_load(config_path).store_url)
    if not deliveries.requeue_failed_delivery(store, delivery):
        raise click.ClickException(f"no failed delivery {delivery}")
    click.echo(f"delivery {delivery} will be processed again")


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="the status as one JSON object, for scripts")
def status(config_path: str | None, as_json: bool) -> None:
    """Queue depth, dead actions, cursors, last poll and go-live instant per source."""
    from syncd.engine import Engine

    config = _load(config_path)
    _setup_logging(config, quiet=True)
    engine = Engine(config, live_lookups=False)  # a look at the store: no API is asked
    try:
        state = engine.status()
    finally:
        engine.close()
    if as_json:
        click.echo(json.dumps(state, indent=2, default=str))
        return
    a = state["actions"]
    click.echo(
        f"rules: {state['rules']}   queue: {state['queue_depth']} "
        f"(due now {state['due_now']})   dead: {state['dead']}   done: {a['done']}"
    )
    click.echo(f"inbox: {state['inbox']['pending']} pending, {state['inbox']['failed']} failed")
    for source, at in state["went_live"].items():
        click.echo(
            f"source {source}: "
            + (f"live since {at}" if at else "not live yet (the first run baselines it)")
        )
    for p in state["polls"]:
        cursor = str(p["cursor"])
        click.echo(
            f"poll {p['source']}.{p['stream']}: "
            f"{_seconds_ago(p['last_poll_seconds_ago'])}, cursor "
            f"{cursor if len(cursor) <= 40 else cursor[:37] + '...'}"
        )
    for r in state["replicas"]:
        click.echo(
            f"replica {r['replica']} (pid {r['pid']} on {r['host']}): "
            f"heartbeat {_seconds_ago(r['heartbeat_seconds_ago'])}"
        )
    for j in state["jobs"]:
        click.echo(
            f"job {j['job']}: held by {j['holder']} (fence {j['fence']}, "
            f"{_seconds_ago(j['heartbeat_seconds_ago'])})"
        )


def _seconds_ago(seconds: float) -> str:
    from syncd.console.presenters import ago

    return ago(0, int(seconds * 1000))


@main.command(name="backfill")
@config_option
@click.argument("source")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="With --replay: act on changes made since this date (UTC); default: all.",
)
@click.option(
    "--replay", is_flag=True, help="Fire the rules on history (default: record snapshots only)."
)
def backfill_command(
    config_path: str | None, source: str, since: datetime | None, replay: bool
) -> None:
    """Read every object of SOURCE again; with --replay, act on its history."""
    from syncd.backfill import backfill
    from syncd.cli_support import engine_for

    config = _load(config_path)
    _setup_logging(config, quiet=True)
    when = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    with engine_for(config, source, f"{source} backfill") as (engine, _):
        try:
            report = backfill(engine, source, since=when, replay=replay)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    what = (
        f"rules fired on changes since {when.date() if when else 'the start'}"
        if replay
        else "snapshots only, no rule fired"
    )
    click.echo(
        f"backfill {source} done: {report.objects} objects, {report.events} events, "
        f"{report.actions} actions ({what})"
    )


@main.command()
@config_option
@click.option("--once", is_flag=True, help="One cycle (inbox, polls, schedules, due actions).")
def run(config_path: str | None, once: bool) -> None:
    """Run the daemon (or one cycle with --once)."""
    config = _load(config_path)
    _setup_logging(config, background=True)
    if once:
        unsafe = _unsafe_files(config)
        if unsafe:  # refused as `syncd run` refuses them
            for problem in unsafe:
                click.echo(f"error: {problem}", err=True)
            sys.exit(2)
        from syncd.engine import Engine, missing_secrets

        missing = missing_secrets(config)
        if missing:  # said before a store is made (or migrated) for a cycle that cannot run
            raise click.ClickException(str(ConfigError(missing)))
        try:
            engine = Engine(config, exclusive=True, require_secrets=True)
        except (ConfigError, MappingError) as exc:
            raise click.ClickException(str(exc)) from None
        from syncd.alerts import make_alerter

        engine.executor.on_dead = make_alerter(engine)
        try:
            report = engine.run_once()
        finally:
            engine.close()
        done = sum(1 for o in report.outcomes if o.status == "done")
        dead = sum(1 for o in report.outcomes if o.status == "dead")
        click.echo(
            f"cycle: {report.inbox} deliveries, {len(report.polled)} streams polled, "
            f"{report.scheduled} scheduled, {done} actions done, {dead} dead, "
            f"{len(report.outcomes) - done - dead} to retry"
        )
        return
    from syncd.daemon import run_daemon

    sys.exit(run_daemon(config))


@main.command()
@config_option
def prune(config_path: str | None) -> None:
    """Delete audit history older than [store] retention_days."""
    from syncd.engine import Engine

    engine = Engine(_load(config_path), live_lookups=False)
    try:
        click.echo(json.dumps(engine.prune()))
    finally:
        engine.close()


if __name__ == "__main__":
    main()
