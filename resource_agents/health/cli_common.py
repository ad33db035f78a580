"""What the `hakit health` verb modules share: one-line errors, the store option, --json."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from hakit.ocf import exits
from hakit.resource_agents.health import constants

Handler = Callable[[argparse.Namespace], int]

#: `--json` of a list verb: sets `json` only when given, not to undo `health --json`
JSON_FLAG: dict[str, Any] = {"action": "store_true", "default": argparse.SUPPRESS}


def store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--subscriptions",
        default=constants.SUBSCRIPTIONS_PATH,
        help="subscriptions and tokens database",
    )


def friendly(handler: Handler) -> Handler:
    """Known failures as one line on stderr and their exit code."""

    def run(args: argparse.Namespace) -> int:
        import sqlite3

        from hakit.ocf.cluster import ClusterCommandError
        from hakit.resource_agents.clouds import CloudError

        try:
            return handler(args)
        except CloudError as error:  # a clouds.yaml entry that cannot work
            print(f"hakit health: {error}", file=sys.stderr)
            return exits.USAGE
        except (ClusterCommandError, sqlite3.Error) as error:
            print(f"hakit health: {error}", file=sys.stderr)
            return exits.ENVIRONMENT
        except ValueError as error:  # SubscriptionError, a bad inventory
            print(f"hakit health: {error}", file=sys.stderr)
            return exits.USAGE

    return run
