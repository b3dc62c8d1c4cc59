"""The shareable link of the app hosted in Snowflake: its Snowsight address, made from the name flurry.toml gives
and what the account says of itself."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml

from backend import config
from backend.errors import ConfigurationError
from backend.warehouse.snowflake_session import SNOWSIGHT_HOST, open_session, snowsight_app_url, snowsight_location
from components.sharing import hosted_share_sentence

ROOT = Path(__file__).resolve().parents[1]


def test_the_address_follows_snowsights_app_builder_format() -> None:
    url = snowsight_app_url("https://app.snowflake.com/", "MYORG", "MY_ACCOUNT", ("FLURRY_APP", "APP", "FLURRY"))
    assert url == "https://app.snowflake.com/myorg/my_account/#/streamlit-apps/FLURRY_APP.APP.FLURRY"
    odd = snowsight_app_url(SNOWSIGHT_HOST, "o", "a b", ("DB", "S$1", "APP"))
    assert odd.endswith("/o/a%20b/#/streamlit-apps/DB.S%241.APP")


def test_the_app_name_comes_from_flurry_toml_and_matches_what_snowflake_yml_deploys(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLURRY_APP_NAME", raising=False)
    deployed = yaml.safe_load((ROOT / "snowflake.yml").read_text(encoding="utf-8"))
    defaults = deployed["env"]
    app_name = deployed["entities"]["flurry"]["identifier"]["name"]
    assert config.hosted_app_name() == (defaults["FLURRY_DATABASE"], defaults["FLURRY_SCHEMA"], app_name)
    assert tomllib.loads((ROOT / "flurry.toml").read_text(encoding="utf-8"))["app"]["name"]


@pytest.mark.parametrize("value", ["FLURRY", "A.B", "A.B.C.D", 'A."b c".D', "A.B.C; DROP TABLE X"])
def test_an_app_name_that_is_not_three_plain_identifiers_is_refused_in_words(
        value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLURRY_APP_NAME", value)
    with pytest.raises(ConfigurationError, match=r"DATABASE\.SCHEMA\.NAME"):
        config.hosted_app_name()


def test_an_account_that_cannot_name_its_organization_gives_no_address(fakesnow_server: dict) -> None:
    """fakesnow has no CURRENT_ORGANIZATION_NAME(): the app then says how to share instead of a wrong link."""
    session = open_session("unused", secrets=dict(fakesnow_server, database="FLURRY_TEST", schema="PUBLIC"))
    assert snowsight_location(session) is None
    sentence = hosted_share_sentence("m-1", None)
    assert "Share button" in sentence and "m-1" in sentence and "http" not in sentence


def test_the_hosted_sentence_gives_the_address_and_the_model_to_pick() -> None:
    address = snowsight_app_url(SNOWSIGHT_HOST, "org", "acct", ("FLURRY_APP", "APP", "FLURRY"))
    sentence = hosted_share_sentence("m-7", address)
    assert sentence.startswith(f"Shareable link: {address} ") and "Dashboards" in sentence and "m-7" in sentence
