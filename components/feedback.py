"""Turning errors into sentences: no raw traceback ever reaches the page."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import streamlit as st

from backend.errors import FlurryError
from components.formatting import md

logger = logging.getLogger("flurry.ui")


class Outcome:
    """Whether the guarded block finished without an error."""

    ok: bool = True


@contextlib.contextmanager
def user_errors(action: str) -> Iterator[Outcome]:
    """Show a FlurryError's message (and hint) as `st.error`; log anything unexpected and say so plainly.

    `action` completes the sentence "Flurry could not …" for unexpected errors.
    """
    outcome = Outcome()
    try:
        yield outcome
    except FlurryError as exc:
        outcome.ok = False
        st.error(md(exc.message) + (f"  \n{md(exc.hint)}" if exc.hint else ""), icon=":material/error:")
    except Exception as exc:
        outcome.ok = False
        logger.exception("unexpected error while trying to %s", action)
        st.error(f"Flurry could not {action} ({type(exc).__name__}). The details are in the app's log; "
                 "please try again, and report it if it keeps happening.", icon=":material/error:")
