"""``vitalsync send``: a group send from the command line, previewed first (three rendered examples)."""

from __future__ import annotations

import sys

from vitalsync.queue import group_send
from vitalsync.queue.group_send import GroupFilter, Preview


def send(runtime, args) -> int:
    where = GroupFilter(kind=args.kind, day=args.date, locations=tuple(_keys(args.location)),
                        provider=args.provider.strip(), appointment_type=args.type.strip())
    shown = group_send.preview(runtime.engine, runtime.kinds, runtime.config, where, runtime.clock.now())
    print_preview(shown)
    queued = len(shown.plan.messages)
    if args.dry_run:
        print("\ndry run: nothing queued")
        return 0
    if not queued:
        print("\nnothing to queue")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"\n{queued} messages would be queued; add --yes to queue them", file=sys.stderr)
            return 1
        if input(f"\nQueue {queued} messages? [y/N] ").strip().lower() != "y":
            return 1
    group, plan = group_send.start(runtime.engine, runtime.kinds, runtime.config, where, runtime.clock.now(),
                                   started_by="cli")
    print(f"group send {group.id}: queued {group.queued} messages ({group.already} already sent, {group.skipped} skipped); "
          "they go out with the next dispatch (`vitalsync run`, or `vitalsync dispatch`)")
    return 0


def print_preview(shown: Preview) -> None:
    plan = shown.plan
    print(f"{shown.where.described()}: {plan.matched} appointments")
    print(f"  to send:  {len(plan.messages)} messages")
    print(f"  skipped:  {plan.skipped}")
    for reason, number in sorted(shown.reasons.items(), key=lambda item: -item[1]):
        print(f"            {number} × {reason}")
    print(f"  already sent by an earlier group send: {plan.already}")
    for number, example in enumerate(shown.examples, start=1):
        print(f"\nExample {number} ({example.channel}, {example.language}"
              f"{f', {example.family} appointments' if example.family > 1 else ''}):")
        if example.subject:
            print(f"  Subject: {example.subject}")
        print("  " + example.body.replace("\n", "\n  "))


def _keys(values: list[str]) -> list[str]:
    return [key.strip() for value in values for key in value.split(",") if key.strip()]
