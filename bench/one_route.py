"""The yardstick of ``bench/http.py``: a Flask app with one route that answers a short string,
served by gunicorn with the same settings as the marketplace. Whatever the marketplace's pages
cost beyond this is the cost of the marketplace itself."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "Hello, World!"
