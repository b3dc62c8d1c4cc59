"""`make snowflake-app`: copy the packages Snowflake's Anaconda channel lacks (FLAML) from this installation into
build/snowflake-app, which snowflake.yml adds to the files `snow streamlit deploy` publishes."""

from __future__ import annotations

from backend.warehouse.snowflake_packages import VENDOR_DIR, vendor_shipped_packages

if __name__ == "__main__":
    for folder in vendor_shipped_packages(VENDOR_DIR):
        print(f"copied {folder}")
