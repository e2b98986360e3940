"""The mapping engine: partner records ↔ the canonical contracts, as IM officers write them.

The language is described for its users in docs/mapping-language.md. A file goes through:
`gateway.yamlpos` (YAML with positions) → `parse` (into `model`) → `check` (with `checkrules`,
`written`, `codes`, `reverse`, `schema`) → `compile` (with `produce` and `assemble`) → run.
`registry` keeps the mappings in force and reloads changed files; `translator` is the entry
for delivery; `cli`, `examples` and `preview` are the IM officer's tools.
"""
