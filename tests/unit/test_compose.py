"""compose.yaml, the scale-out layout, names only what exists: casebridge commands the CLI
has, settings the gateway reads, and a RabbitMQ cluster whose nodes are all services."""

import re
from typing import Any

import typer.main
from ruamel.yaml import YAML

from gateway import ROOT
from gateway.cli import app
from gateway.settings import Settings

COMPOSE: dict[str, Any] = YAML(typ="safe").load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def casebridge_commands() -> set[str]:
    group = typer.main.get_group(app)
    return set(group.commands)


def test_every_process_of_the_layout_is_there_and_runs_a_real_command() -> None:
    commands = {name: service["command"] for name, service in SERVICES.items()
                if "command" in service}
    assert all(command[0] == "casebridge" and command[1] in casebridge_commands()
               for command in commands.values()), commands
    counted = [command[1] for command in commands.values()]
    assert (counted.count("serve"), counted.count("worker"), counted.count("relay"),
            counted.count("scheduler"), counted.count("poll")) == (2, 2, 1, 1, 1)


def test_every_setting_named_is_one_the_gateway_reads() -> None:
    fields = {f"CASEBRIDGE_{name.upper()}" for name in Settings.model_fields}
    named = {key for service in SERVICES.values()
             for key in (service.get("environment") or {}) if key.startswith("CASEBRIDGE_")}
    assert named and named <= fields, named - fields


def test_the_broker_is_a_cluster_of_three_nodes_each_a_service() -> None:
    cluster = COMPOSE["configs"]["rabbitmq-cluster"]["content"]
    nodes = re.findall(r"classic_config\.nodes\.\d+ = rabbit@(\S+)", cluster)
    assert len(nodes) == 3 and all(SERVICES[node]["hostname"] == node for node in nodes)
    hosts = {re.search(r"@([^:/]+)", service["environment"]["CASEBRIDGE_AMQP_URL"]).group(1)
             for service in SERVICES.values()
             if "CASEBRIDGE_AMQP_URL" in (service.get("environment") or {})}
    assert hosts and hosts <= set(nodes)
