"""The shareable link to a model's dashboard: absolute, from the address this session's browser used; in the app
hosted by Snowflake, where that address is the inner frame's and not one a colleague can open, the app's own
Snowsight address and the model to pick there."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

from backend.errors import ConfigurationError
from backend.warehouse.snowflake_session import inside_snowflake
from components import backend_calls as calls


def dashboard_link(page_url: str, params: dict[str, str], page: str = "deploy") -> str:
    """The address of `page` (this session's page, as its browser shows it) turned into the dashboard page's
    address with `params`; the app's own base path, if it is served under one, is kept."""
    parts = urlsplit(page_url)
    path = parts.path.rstrip("/")
    if path.endswith(f"/{page}") or path == page:
        path = path[: -len(page)].rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, f"{path}/dashboard", urlencode(params), ""))


def hosted_share_sentence(model_id: str, app_address: str | None) -> str:
    """What a hosted app says under "Share": the app's Snowsight address and the model to pick. The page and
    model are not put into the address: how Snowsight hands a URL's query parameters to an app could not be
    checked against Snowflake's documentation here, and a link that opens the wrong page would be worse."""
    if app_address:
        return (f"Shareable link: {app_address} — in the app, open Dashboards and pick the model {model_id}. "
                "Viewers need a role the app is shared with (Snowsight's Share button).")
    return ("Share this app from Snowsight (its Share button); a viewer opens Dashboards and picks the model "
            f"{model_id}. To show the app's address here, set `[app] name` in flurry.toml.")


def share_sentence(params: dict[str, str]) -> str:
    """What the Deploy step says under "Share"."""
    if inside_snowflake():
        try:
            address = calls.hosted_app_address()
        except ConfigurationError as exc:
            return str(exc)
        return hosted_share_sentence(params["model"], address)
    url = getattr(st.context, "url", None)
    if not url:
        return f"Shareable link: the dashboard page of this app with ?{urlencode(params)}"
    return f"Shareable link: {dashboard_link(str(url), params)}"
