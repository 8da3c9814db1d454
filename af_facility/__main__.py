"""``python -m af_facility up|down|status`` — the embedded demo analysis facility.

Everything listens on 127.0.0.1 only, on free ports, with all state under one
directory (default ``.facility/``). A second ``up`` on the same directory reuses
what is there; ``down`` stops every process by its PID file.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from .facility import DEFAULT_SERVICES, SERVICES, Facility
from .procs import ServiceError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m af_facility", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=".facility", help="state directory (default: .facility)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the facility (reuses a running one)")
    up.add_argument("--lab", action="store_true", help="also start JupyterLab with af-lab configured")
    up.add_argument("--wait", action="store_true", help="stay in the foreground; Ctrl-C stops everything")
    up.add_argument("--only", help=f"comma-separated subset of {','.join(SERVICES)}")
    down = sub.add_parser("down", help="stop every facility process")
    down.add_argument("--only", help="comma-separated subset to stop")
    sub.add_parser("status", help="print which services run")
    big = sub.add_parser("big-sample", help="write and register the big NanoAOD-like sample (for bench/)")
    big.add_argument("--events", type=int, default=None, help="number of events (default 3,000,000)")
    big_ds = sub.add_parser(
        "big-dataset", help="write tiny replicas of a 50,000-file dataset on an RSE and register it (for bench/)"
    )
    big_ds.add_argument("--files", type=int, default=None, help="number of files (default 50,000)")
    info = sub.add_parser("info", help="print what a service published (JSON)")
    info.add_argument("service", nargs="?")
    args = parser.parse_args(argv)

    facility = Facility(Path(args.dir))
    if args.command == "up":
        names = args.only.split(",") if args.only else list(DEFAULT_SERVICES) + (["lab"] if args.lab else [])
        unknown = [n for n in names if n not in SERVICES]
        if unknown:
            parser.error(f"unknown service(s): {', '.join(unknown)}")
        print(f"af-lab demo facility in {facility.root}")
        t0 = time.monotonic()
        signal.signal(signal.SIGINT, _interrupt_once)
        signal.signal(signal.SIGTERM, _interrupt_once)
        failure: ServiceError | None = None
        try:
            facility.up(names)
        except ServiceError as err:
            failure = err
            print(f"\nFAILED: {err}", file=sys.stderr)
        except KeyboardInterrupt:
            # Facility.up has stopped what it started; a second Ctrl-C is ignored meanwhile.
            print("\ninterrupted: the services this run started are stopped", file=sys.stderr)
            return 130
        running = [name for name, alive in facility.status().items() if alive]
        if failure is not None:
            if not running or not args.wait:
                if running:
                    print(
                        f"still running: {', '.join(running)} (python -m af_facility --dir {args.dir} down stops them)",
                        file=sys.stderr,
                    )
                return 1
            print(f"the rest runs: {', '.join(running)}", file=sys.stderr)
        else:
            print(f"ready in {time.monotonic() - t0:.1f} s")
        lab = facility.state.services.get("lab")
        if lab and lab.get("available"):
            print(f"\n  Open JupyterLab: {lab['url']}\n")
        if args.wait:
            _wait_then_stop(facility)
        return 1 if failure is not None else 0
    if args.command == "down":
        facility.down(args.only.split(",") if args.only else None)
        print("stopped")
        return 0
    if args.command == "status":
        for name, running in facility.status().items():
            print(f"{name:8s} {'running' if running else 'stopped'}")
        return 0
    if args.command == "big-sample":
        from .big_sample import DEFAULT_EVENTS, make_big_sample

        try:
            made = make_big_sample(facility.state, args.events or DEFAULT_EVENTS)
        except ServiceError as err:
            print(f"FAILED: {err}", file=sys.stderr)
            return 1
        print(json.dumps({k: v for k, v in made.items() if k != "files"}, indent=2))
        return 0
    if args.command == "big-dataset":
        from .big_dataset import DEFAULT_FILES, make_big_dataset

        try:
            print(json.dumps(make_big_dataset(facility.state, args.files or DEFAULT_FILES), indent=2))
        except ServiceError as err:
            print(f"FAILED: {err}", file=sys.stderr)
            return 1
        return 0
    if args.command == "info":
        data = facility.state.services if not args.service else facility.state.services.get(args.service, {})
        print(json.dumps(data, indent=2))
        return 0
    return 2


def _interrupt_once(*_):
    """Ctrl-C (or SIGTERM) during ``up``: interrupt once, then let the clean-up finish."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _wait_then_stop(facility: Facility) -> None:
    stop = False

    def _stop(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    print("Press Ctrl-C to stop the facility.")
    while not stop:
        time.sleep(0.5)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # stopping is not interrupted by another Ctrl-C
    print("\nstopping…")
    facility.down()


if __name__ == "__main__":
    sys.exit(main())
