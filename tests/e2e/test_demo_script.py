"""`make demo` runs: sandboxes, gateway, relay, worker and poller carry a referral both ways."""

import os
import subprocess

from gateway import ROOT
from servers import free_port


def test_the_demo_walks_a_referral_to_progres_and_back(tmp_path, amqp_url) -> None:
    env = {**os.environ, "CASEBRIDGE_DEMO_EXIT": "1",
           "CASEBRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
           "CASEBRIDGE_AMQP_URL": amqp_url, "CASEBRIDGE_PORT": str(free_port()),
           "CASEBRIDGE_DEMO_PROGRES_PORT": str(free_port()),
           "CASEBRIDGE_DEMO_PRIMERO_PORT": str(free_port())}
    run = subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "status in the gateway: delivered" in run.stdout
    assert '"Pending Acknowledgement"' in run.stdout
    assert "acknowledged → accepted     by receiver" in run.stdout
    assert "/docs" in run.stdout
