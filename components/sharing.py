"""The shareable link to a model's dashboard: absolute, from the address this session's browser used; in the app
hosted by Snowflake, where that address is the inner frame's and not one a colleague can open, the way to get
there instead."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

from backend.warehouse.snowflake_session import inside_snowflake


def dashboard_link(page_url: str, params: dict[str, str], page: str = "deploy") -> str:
    """The address of `page` (this session's page, as its browser shows it) turned into the dashboard page's
    address with `params`; the app's own base path, if it is served under one, is kept."""
    parts = urlsplit(page_url)
    path = parts.path.rstrip("/")
    if path.endswith(f"/{page}") or path == page:
        path = path[: -len(page)].rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, f"{path}/dashboard", urlencode(params), ""))


def share_sentence(params: dict[str, str]) -> str:
    """What the Deploy step says under "Share"."""
    if inside_snowflake():
        return ("Share this app from Snowsight (its Share button); a viewer opens Dashboards and picks the model "
                f"{params['model']}.")
    url = getattr(st.context, "url", None)
    if not url:
        return f"Shareable link: the dashboard page of this app with ?{urlencode(params)}"
    return f"Shareable link: {dashboard_link(str(url), params)}"
