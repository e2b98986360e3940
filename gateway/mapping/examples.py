"""Run the examples written beside the rules, and say exactly how an output differs."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from gateway.contracts import Contracts
from gateway.errors import MappingError
from gateway.mapping.compile import CompiledMapping
from gateway.mapping.model import Direction, Example


@dataclass
class ExampleResult:
    """One example run: passed, or why not (a diff, an error, broken contract rules)."""

    file: str
    line: int
    direction: Direction
    name: str
    passed: bool
    details: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f'{self.file}:{self.line}: {self.direction} "{self.name}"'


def run_examples(compiled: CompiledMapping, contracts: Contracts) -> list[ExampleResult]:
    """Run every example of a compiled mapping, in file order."""
    results = []
    for direction, block in compiled.mapping.blocks.items():
        for example in block.examples:
            results.append(_run(compiled, contracts, direction, example))
    return results


def _run(compiled: CompiledMapping, contracts: Contracts, direction: Direction,
         example: Example) -> ExampleResult:
    result = ExampleResult(compiled.file, example.pos.line, direction, example.name, True)
    try:
        output = compiled.run(direction, example.input)
    except MappingError as error:
        failed_at = error.extensions.get("path")
        if example.error is not None and failed_at == example.error:
            return result
        result.passed = False
        result.details = [f"the mapping failed: {error.detail}"]
        if example.error is not None:
            result.details.append(f"expected it to fail at {example.error}, not {failed_at}")
        return result
    if example.error is not None:
        result.passed = False
        result.details = [f"expected the rule writing {example.error} to fail, but the "
                          "record was translated:", *_pretty(output)]
        return result
    if output != example.output:
        result.passed = False
        result.details = diff(example.output, output)
        return result
    if direction == "inbound" and compiled.contract in contracts.schemas:
        broken = contracts.validate(compiled.contract, output)
        if broken:
            result.passed = False
            result.details = [f"the output breaks the {compiled.contract} contract:"] + [
                f"  {e.pointer or '/'}: {e.detail} ({e.rule})" for e in broken]
    return result


def _pretty(value: Any) -> list[str]:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True).splitlines()


def diff(expected: Any, got: Any) -> list[str]:
    """A unified diff of two JSON values, keys sorted so only real differences show."""
    return list(difflib.unified_diff(_pretty(expected), _pretty(got), "expected", "got",
                                     lineterm="", n=2))
