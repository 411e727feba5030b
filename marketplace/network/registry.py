"""What the network adds to the app: its change log follows skills, track records and names, large
contact imports run as jobs, stale previews and old changes are pruned, and an invitation to join
becomes a connection request once the address is proven (docs/network.md)."""

from flask import Flask

from marketplace import signals
from marketplace.jobs.service import register_handler, register_periodic
from marketplace.network import changes, imports, service


def init_app(app: Flask) -> None:
    signals.member_skills_changed.connect(changes.skills_changed, weak=False)
    signals.member_appearance_changed.connect(changes.appearance_changed, weak=False)
    signals.email_verified.connect(service.join_invitations_to_requests, weak=False)
    register_handler(changes.TRACK_RECORD_JOB, changes.track_record_changed)
    register_handler(imports.JOB_KIND, imports.confirm_in_chunks)
    register_periodic("prune network changes", changes.prune_changes)
    register_periodic("drop stale contact import previews", imports.drop_stale_previews)
