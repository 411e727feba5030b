"""State kept across restarts with a state file, in-process and through the CLI."""

import subprocess
import sys

import stripe

from devtools.stripe_emulator import Emulator


def _client(url):
    return stripe.StripeClient("sk_test_x", base_addresses={"api": url}, max_network_retries=0)


def test_state_survives_a_restart(tmp_path):
    path = tmp_path / "stripe.json"
    first = Emulator(state_file=str(path)).start()
    client = _client(first.url)
    customer = client.v1.customers.create(params={"email": "ada@example.test"}, options={"idempotency_key": "ada"})
    client.v1.payment_intents.create(
        params={"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    first.advance_time(3600)
    first.stop()

    second = Emulator(state_file=str(path)).start()
    try:
        client = _client(second.url)
        assert client.v1.customers.retrieve(customer.id).email == "ada@example.test"
        assert client.v1.balance.retrieve().pending[0].amount == 1000 - 59
        assert second.now() >= customer.created + 3600
        replayed = client.v1.customers.create(params={"email": "ada@example.test"}, options={"idempotency_key": "ada"})
        assert replayed.id == customer.id
    finally:
        second.stop()


def _run_cli(path):
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.stripe_emulator", "--port", "0", "--state", str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
    return process, url


def test_cli_keeps_state_in_the_state_file(tmp_path):
    path = tmp_path / "cli-state.json"
    process, url = _run_cli(path)
    try:
        assert url.startswith("http://127.0.0.1:")
        customer = _client(url).v1.customers.create(params={"name": "Persisted"})
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0
        process.stdout.close()

    process, url = _run_cli(path)
    try:
        assert _client(url).v1.customers.retrieve(customer.id).name == "Persisted"
    finally:
        process.terminate()
        process.wait(timeout=5)
        process.stdout.close()
