"""``python -m devtools.stripe_emulator --port PORT [--state FILE]``"""

import argparse
import logging
import signal
import threading

from .emulator import Emulator


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m devtools.stripe_emulator",
        description="Serve a stateful Stripe API emulator on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=12111, help="0 picks a free port")
    parser.add_argument("--state", metavar="FILE", help="load and save the state in this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    emulator = Emulator(state_file=args.state).start(port=args.port)
    print(f"Stripe emulator listening on {emulator.url}", flush=True)
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
