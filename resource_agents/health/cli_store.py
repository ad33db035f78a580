"""`hakit health subscriptions` and `hakit health tokens`: list, add, delete."""

from __future__ import annotations

import argparse
import json

from hakit.ocf import exits
from hakit.resource_agents.health import constants
from hakit.resource_agents.health.cli_common import JSON_FLAG, friendly, store_options


def add_verbs(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`subscriptions` and `tokens`: list, add, delete (deleting asks first)."""
    subs = verbs.add_parser("subscriptions", help="list, add or delete subscriptions")
    store_options(subs)
    sub_verbs = subs.add_subparsers(dest="subscriptions_verb", required=True)
    listing = sub_verbs.add_parser("list", help="every subscription (never its secret)")
    listing.add_argument("--json", **JSON_FLAG, help='JSON: {"subscriptions": [{"id", …}]}')
    listing.set_defaults(func=friendly(_subscriptions_list))
    add = sub_verbs.add_parser("add", help="subscribe a callback URI")
    add.add_argument("uri")
    add.add_argument("--type", action="append", default=[], choices=constants.NOTIFICATION_TYPES)
    add.add_argument("--severity", action="append", default=[], choices=constants.SEVERITIES)
    add.add_argument("--host", action="append", default=[])
    add.add_argument("--secret-file", help="read the HMAC secret from this file")
    add.add_argument("--no-test", action="store_true", help="skip the callback's test GET")
    add.set_defaults(func=friendly(_subscriptions_add))
    delete = sub_verbs.add_parser("delete")
    delete.add_argument("id")
    exits.add_confirmation(delete, dry_run=False)
    delete.set_defaults(func=friendly(_subscriptions_delete))
    tokens = verbs.add_parser("tokens", help="bearer tokens for the API")
    store_options(tokens)
    token_verbs = tokens.add_subparsers(dest="tokens_verb", required=True)
    listing = token_verbs.add_parser("list", help="the tokens' names (never a token)")
    listing.add_argument("--json", **JSON_FLAG, help='JSON: {"tokens": [{"name"}]}')
    listing.set_defaults(func=friendly(_tokens_list))
    for verb, handler in (("add", _tokens_add), ("delete", _tokens_delete)):
        parser = token_verbs.add_parser(verb)
        parser.add_argument("name")
        if verb == "delete":
            exits.add_confirmation(parser, dry_run=False)
        parser.set_defaults(func=friendly(handler))


def _subscriptions_list(args: argparse.Namespace) -> int:
    from hakit.resource_agents.health.subscriptions import SubscriptionStore

    with SubscriptionStore(args.subscriptions, create=False) as store:
        found = [(s.id, s.callback_uri, s.filter.as_sol()) for s in store.all()]
    if getattr(args, "json", False):  # what the text says: never the secret
        keys = ("id", "callbackUri", "filter")
        print(
            json.dumps(
                {"subscriptions": [dict(zip(keys, s, strict=True)) for s in found]}, indent=2
            )
        )
        return 0
    for ident, uri, wanted in found:
        print(f"{ident}  {uri}  {json.dumps(wanted, sort_keys=True)}")
    return 0


def _subscriptions_add(args: argparse.Namespace) -> int:
    from hakit.resource_agents.health import subscriptions
    from hakit.resource_agents.health.subscriptions import SubscriptionStore

    request: dict[str, object] = {
        "callbackUri": args.uri,
        "filter": {
            "notificationTypes": args.type,
            "perceivedSeverities": args.severity,
            "hosts": args.host,
        },
    }
    if args.secret_file:
        with open(args.secret_file, encoding="utf-8") as handle:
            secret = handle.read().strip()
        request["authentication"] = subscriptions.hmac_authentication(secret)
    parsed = subscriptions.parse_request(request)
    with SubscriptionStore(args.subscriptions) as store:
        subscription, created = subscriptions.subscribe(
            store, parsed, test_timeout=None if args.no_test else 5.0
        )
    print(f"{'subscribed' if created else 'already subscribed'}: {subscription.id}")
    if created and parsed.secret is None:
        print(f"secret (shown once): {subscription.secret}")
    return 0


def _subscriptions_delete(args: argparse.Namespace) -> int:
    from hakit.resource_agents.health.subscriptions import SubscriptionError, SubscriptionStore

    exits.confirm(args, f"delete subscription {args.id}")
    with SubscriptionStore(args.subscriptions, create=False) as store:
        if not store.delete(args.id):
            raise SubscriptionError(f"no subscription {args.id}")
    return 0


def _tokens_list(args: argparse.Namespace) -> int:
    from hakit.resource_agents.health.subscriptions import SubscriptionStore

    with SubscriptionStore(args.subscriptions, create=False) as store:
        names = store.token_names()  # the tokens are not kept, only their hashes
    if getattr(args, "json", False):
        print(json.dumps({"tokens": [{"name": name} for name in names]}, indent=2))
        return 0
    for name in names:
        print(name)
    return 0


def _tokens_add(args: argparse.Namespace) -> int:
    from hakit.resource_agents.health.subscriptions import SubscriptionStore

    with SubscriptionStore(args.subscriptions) as store:
        print(store.add_token(args.name))
    return 0


def _tokens_delete(args: argparse.Namespace) -> int:
    from hakit.resource_agents.health.subscriptions import SubscriptionError, SubscriptionStore

    exits.confirm(args, f"delete token {args.name!r} (its holders lose access)")
    with SubscriptionStore(args.subscriptions, create=False) as store:
        if not store.delete_token(args.name):
            raise SubscriptionError(f"no token {args.name!r}")
    return 0
