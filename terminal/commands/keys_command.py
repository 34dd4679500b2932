"""``keys``: exchange API keys in the OS keyring (set, delete, list).

Secrets are read with :func:`getpass.getpass`, never from the command line, where they would
land in the shell's history and the process list.
"""

from __future__ import annotations

import argparse
import getpass
from typing import Any

from terminal.cli import EXIT_OK, print_json
from terminal.core.secrets import ApiCredentials, KeyStore, check_exchange_id


def register(commands: Any) -> None:
    """Add the ``keys`` command to the CLI's subparsers."""
    keys = commands.add_parser(
        "keys", help="exchange API keys in the OS keyring",
        description="Keep exchange API keys in the operating system's keyring (macOS Keychain,"
                    " Windows Credential Manager, Secret Service on Linux). Secrets are asked"
                    " for at a hidden prompt, never taken from the command line.")
    keys.add_argument("--keys-from-env", action="store_true",
                      help="use keys from TERMINAL_<EXCHANGE>_API_KEY/_SECRET/_PASSWORD"
                           " environment variables instead of the keyring (read-only)")
    actions = keys.add_subparsers(title="keys commands", metavar="ACTION", required=True)

    setting = actions.add_parser("set", help="store (or replace) the key of an exchange")
    setting.add_argument("exchange", help="ccxt exchange id such as binance, okx, kraken")
    setting.set_defaults(run=run_set)

    deleting = actions.add_parser("delete", help="forget the key of an exchange")
    deleting.add_argument("exchange", help="ccxt exchange id")
    deleting.set_defaults(run=run_delete)

    listing = actions.add_parser("list", help="exchanges that have a key (never the secrets)")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(run=run_list)


def _key_store(args: argparse.Namespace) -> KeyStore:
    return KeyStore(from_env=bool(args.keys_from_env))


def run_set(args: argparse.Namespace) -> int:
    exchange = check_exchange_id(args.exchange)
    store = _key_store(args)
    api_key = getpass.getpass(f"{exchange} API key: ").strip()
    secret = getpass.getpass(f"{exchange} secret: ").strip()
    password = getpass.getpass(f"{exchange} password/passphrase (Enter if none): ").strip()
    credentials = ApiCredentials(api_key, secret, password or None)
    store.save(exchange, credentials)
    print(f"stored the {exchange} key {credentials.masked_key} in the OS keyring")
    return EXIT_OK


def run_delete(args: argparse.Namespace) -> int:
    exchange = check_exchange_id(args.exchange)
    if _key_store(args).delete(exchange):
        print(f"deleted the {exchange} key")
    else:
        print(f"there was no {exchange} key")
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    store = _key_store(args)
    rows = []
    for exchange in store.exchanges():
        credentials = store.load(exchange)
        rows.append({"exchange": exchange,
                     "key": credentials.masked_key if credentials else None,
                     "password": bool(credentials and credentials.password)})
    source = "environment" if store.from_env else "keyring"
    if args.json:
        print_json({"source": source, "exchanges": rows})
    elif not rows:
        print(f"no exchange keys in the {source}")
    else:
        for row in rows:
            extra = ", with password" if row["password"] else ""
            print(f"{row['exchange']:<12} {row['key']}{extra}")
    return EXIT_OK
