"""``lossctl explain NAME``: everything the registry knows about one loss or metric."""

from __future__ import annotations

import json

import click

from lossctl.cli.common import config_options, plugin_names
from lossctl.completion import complete_name
from lossctl.options import click_options


@click.command("explain", short_help="Formula, parameters, shapes and examples of one loss or metric.")
@click.argument("name", shell_complete=complete_name)
@click.option("--json", "as_json", is_flag=True, help="Write one JSON object instead of text.")
@click_options("explain")
@config_options
def explain_command(name: str, as_json: bool, plugins: tuple[str, ...], config_path: str | None, no_config: bool) -> None:
    """Explain NAME: formula, parameters, input shapes, Keras and scikit-learn equivalents.

    NAME is any name or alias (case-insensitive, '-' equals '_'); a spec
    with parameters (huber:delta=2) explains its NAME. The page ends with
    commands you can run. A plugin's entry (--plugin, or the config's
    plugins) shows its file, content hash, signature and docstring.

    \b
    Examples:
      lossctl explain huber
      lossctl explain logcosh
      lossctl explain sparse-categorical-crossentropy --json
      lossctl explain huber_loss_with_threshold --plugin examples/plugins/huber.py
    """
    # Imported here so that building the command group (lossctl --help) stays fast.
    from lossctl.docs import explain_info, explain_text
    from lossctl.params import parse_spec
    from lossctl.plugins import loaded
    from lossctl.registry import lookup

    asked = parse_spec(name).name
    with loaded(plugin_names(plugins, config_path, no_config)):
        entry = lookup(asked)
        if as_json:
            click.echo(json.dumps(explain_info(entry, asked), indent=2, allow_nan=False))
            return
        click.echo(explain_text(entry, asked), nl=False)
