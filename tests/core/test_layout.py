"""The layout's Bootstrap files come from the app itself, never a CDN, and follow wherever the
app is mounted (the tags are built once per mount point, ``marketplace.web.bootstrap_tags``)."""

import re


def test_bootstrap_is_served_by_the_app_under_its_mount_point(client):
    for script_root in ("", "/market"):
        page = client.get("/login", base_url=f"http://localhost{script_root}").text
        assets = re.findall(r'<(?:link rel="stylesheet"|script) (?:href|src)="([^"]+)"', page)
        bootstrap = [url for url in assets if "bootstrap" in url]
        assert {url.rsplit(".", 1)[-1] for url in bootstrap} == {"css", "js"}, assets
        assert all(url.startswith(f"{script_root}/bootstrap/static/") for url in bootstrap), assets
        stylesheet = client.get(bootstrap[0].removeprefix(script_root))
        assert stylesheet.status_code == 200
