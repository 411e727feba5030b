"""Flask extensions, created unbound and ``init_app``-ed by the app factory."""

from flask_bootstrap import Bootstrap5
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf import CSRFProtect

from marketplace.db import db as database

login_manager = LoginManager()
login_manager.login_view = "accounts.login"
login_manager.login_message = "Log in to continue."
login_manager.login_message_category = "info"

csrf = CSRFProtect()
bootstrap = Bootstrap5()
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)

__all__ = ["bootstrap", "csrf", "database", "limiter", "login_manager"]
