"""``lossctl explain NAME``: everything the registry knows about one loss or metric."""

from __future__ import annotations

import json

import click

from lossctl.completion import complete_name


@click.command("explain", short_help="Formula, parameters, shapes and examples of one loss or metric.")
@click.argument("name", shell_complete=complete_name)
@click.option("--json", "as_json", is_flag=True, help="Write one JSON object instead of text.")
def explain_command(name: str, as_json: bool) -> None:
    """Explain NAME: formula, parameters, input shapes, Keras and scikit-learn equivalents.

    NAME is any name or alias (case-insensitive, '-' equals '_'); a spec
    with parameters (huber:delta=2) explains its NAME. The page ends with
    commands you can run.

    \b
    Examples:
      lossctl explain huber
      lossctl explain logcosh
      lossctl explain sparse-categorical-crossentropy --json
    """
    # Imported here so that building the command group (lossctl --help) stays fast.
    from lossctl.docs import explain_info, explain_text
    from lossctl.params import parse_spec
    from lossctl.registry import lookup

    asked = parse_spec(name).name
    entry = lookup(asked)
    if as_json:
        click.echo(json.dumps(explain_info(entry, asked), indent=2, allow_nan=False))
        return
    click.echo(explain_text(entry, asked), nl=False)
