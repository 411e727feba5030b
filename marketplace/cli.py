"""Command-line jobs: ``flask problems expire``, ``flask referrals verify``, ``flask ledger verify``,
``flask ledger release``, ``flask stripe reconcile``, ``flask stripe sweep``, ``flask demo seed``,
``flask worker``."""

import sys
import time
from datetime import timedelta

import click
import stripe
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from marketplace.db import db, utcnow
from marketplace.demo import LOGINS, PASSWORD, seed
from marketplace.jobs import service as jobs
from marketplace.ledger import verify
from marketplace.ledger.paid_chains import verify_attribution
from marketplace.payments import service as payments
from marketplace.payments.reconcile import reconcile
from marketplace.referrals.chains import verify_chains
from marketplace.workflows.funding import expire_due
from marketplace.workflows.settlement import release_due

problems_cli = AppGroup("problems", help="Problem lifecycle jobs.")
referrals_cli = AppGroup("referrals", help="Referral chain checks.")
demo_cli = AppGroup("demo", help="The demo data set.")
stripe_cli = AppGroup("stripe", help="Payments with Stripe.")


@stripe_cli.command("reconcile")
def reconcile_stripe():
    """Compare the ledger with Stripe's charges, fees, refunds and transfers, from both sides;
    exits 1 on any difference, each listed with what to do."""

    try:
        differences = reconcile(db.session)
    except stripe.StripeError as error:
        click.echo(f"Stripe could not be read ({type(error).__name__}): {error.user_message or error}", err=True)
        sys.exit(1)
    for line in differences:
        click.echo(line, err=True)
    if differences:
        sys.exit(1)
    click.echo("the ledger and Stripe agree")


@stripe_cli.command("sweep")
def sweep_checkouts():
    """Ask Stripe now about every checkout no webhook has settled (the worker does it every few minutes)."""

    outcomes = payments.sweep_checkouts(db.session, now=utcnow() + payments.SWEEP_AFTER)
    db.session.commit()
    for checkout_id, outcome in outcomes.items():
        click.echo(f"checkout {checkout_id}: {outcome}")
    click.echo(f"asked Stripe about {len(outcomes)} checkout(s)")


ledger_cli = AppGroup("ledger", help="Ledger checks and the guarantee period.")


@problems_cli.command("expire")
def expire_problems():
    """Close every problem whose expiry date has passed."""

    expired = expire_due(db.session)
    db.session.commit()
    click.echo(f"expired {len(expired)} problem(s)" + (f": {', '.join(map(str, expired))}" if expired else ""))


@referrals_cli.command("verify")
def verify_referrals():
    """Recompute every chain hash and attribution record, and compare the referrals, introductions
    and settled shares with the records; exits 1 and lists each difference."""

    broken = verify_chains(db.session) + verify_attribution(db.session)
    for line in broken:
        click.echo(line, err=True)
    if broken:
        sys.exit(1)
    click.echo("all referral chains verify")


@ledger_cli.command("verify")
def verify_ledger():
    """Check every invariant of the money; exits 1 and lists each one that is broken."""

    broken = verify.verify_ledger(db.session)
    for line in broken:
        click.echo(line, err=True)
    if broken:
        click.echo(f"the ledger does not verify: {len(broken)} problem(s)", err=True)
        sys.exit(1)
    click.echo("the ledger verifies")


@ledger_cli.command("release")
def release_shares():
    """Release the held shares of every problem whose guarantee period has ended."""

    released = release_due(db.session)
    db.session.commit()
    click.echo(f"released {len(released)} problem(s)" + (f": {', '.join(map(str, released))}" if released else ""))


@demo_cli.command("seed")
def seed_demo():
    """Create the demo data once (does nothing if it exists) and print the logins."""

    created = seed(db.session)
    db.session.commit()

    click.echo("demo data " + ("created" if created else "already present") + "; log in with any of:")
    for email, who in LOGINS:
        click.echo(f"  {email:<30} {PASSWORD}   {who}")


@click.command("worker")
@with_appcontext
@click.option("--interval", default=5.0, help="Seconds to sleep when there is nothing to do.")
@click.option("--once", is_flag=True, help="Run one round and exit.")
def worker(interval: float, once: bool):
    """Perform outbox jobs (Stripe, e-mail, webhooks) and the time-based jobs, until stopped."""

    name = jobs.worker_name()
    lease = timedelta(seconds=current_app.config["JOB_LEASE_SECONDS"])
    click.echo(f"worker {name} started")
    while True:
        outcomes = jobs.run_periodic(db.session)
        report = jobs.work_once(db.session, name, lease=lease)
        db.remove()
        if report.performed or report.failed:
            click.echo(f"jobs: {report.performed} done, {report.failed} failed or retrying")
        for job_name, outcome in outcomes.items():
            if outcome:
                click.echo(f"{job_name}: {outcome}")
        if once:
            return
        if not report.performed:
            time.sleep(interval)


def init_app(app: Flask) -> None:
    for command in (problems_cli, referrals_cli, ledger_cli, demo_cli, stripe_cli, worker):
        app.cli.add_command(command)
