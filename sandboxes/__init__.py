"""Stand-ins of the partner systems: real HTTP servers with their own store and native API.

Each `sandboxes/<system>/app.py` has
`create_app(*, database: Path, seed: bool = True, faults: Faults | None = None) -> FastAPI`;
fault injection (latency, failure rate, throttling) is switched on through the sandbox's
`/_sandbox/faults` endpoint or `casebridge sandbox NAME --failure-rate …`.
"""

SANDBOXES = {
    "progres": "sandboxes.progres.app",
    "primero": "sandboxes.primero.app",
    "ndelius": "sandboxes.ndelius.app",
}
