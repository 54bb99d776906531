"""Small pieces shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every option's default, and keeps the description's line breaks. A help text that states its
    default already, and an option without one (None), get no "(default: ...)" of argparse's as well."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or "(default" in text or text.startswith("default"):
            return text
        return super()._get_help_string(action)


def add_subparser(sub, name: str, help_text: str, description: str | None = None) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help_text, description=description or help_text,
                          formatter_class=HelpFormatter, allow_abbrev=False)


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _int_at_least(low: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
        return value

    return parse


positive_int = _int_at_least(1, "at least 1")
non_negative_int = _int_at_least(0, "0 or more")
loader_workers = _int_at_least(-1, "0 (decode in the main process) or more, or -1 (auto)")


def jpeg_quality(text: str) -> int:
    """A JPEG quality for the encoder: 1 (smallest files) to 100."""
    value = positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"must be from 1 to 100, got {value}")
    return value
