"""Provider choice and client building: argument > environment > .env > default."""

from __future__ import annotations

import openai
import pytest
from conftest import FAKE_KEY

from helpers.settings import (
    AUTO_ORDER,
    PROVIDERS,
    MissingKeyError,
    load_config,
    make_async_client,
    make_client,
    mask_key,
)


def test_no_key_anywhere_means_offline_and_says_so():
    config = load_config(env={})
    assert config.is_offline
    assert config.base_url.startswith("http://127.0.0.1:")
    assert "no API key found" in config.describe()


def test_llm_provider_wins_over_detected_keys():
    config = load_config(env={"LLM_PROVIDER": "deepseek", "MOONSHOT_API_KEY": "m" * 20,
                              "DEEPSEEK_API_KEY": "d" * 20})
    assert (config.provider, config.base_url, config.api_key) == (
        "deepseek", PROVIDERS["deepseek"].base_url, "d" * 20)


def test_moonshot_comes_first_in_auto_detection():
    assert AUTO_ORDER[0] == "moonshot"
    config = load_config(env={"OPENAI_API_KEY": "o" * 20, "MOONSHOT_API_KEY": "m" * 20})
    assert config.provider == "moonshot" and config.base_url == "https://api.moonshot.cn/v1"
    assert "MOONSHOT_API_KEY is set" in config.source


@pytest.mark.parametrize("name", [n for n in AUTO_ORDER])
def test_chosen_provider_without_key_names_the_variable(name):
    with pytest.raises(MissingKeyError, match=PROVIDERS[name].key_env):
        load_config(name, env={})


def test_unknown_provider_lists_the_choices():
    with pytest.raises(ValueError, match="moonshot"):
        load_config("nope", env={})


def test_arguments_beat_environment():
    config = load_config("openai", model="m1", base_url="http://x/v1", api_key="a" * 20,
                         env={"OPENAI_API_KEY": "e" * 20, "LLM_MODEL": "m2"})
    assert (config.model, config.base_url, config.api_key) == ("m1", "http://x/v1", "a" * 20)


def test_environment_beats_dotenv(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("LLM_PROVIDER=moonshot\nMOONSHOT_API_KEY=from-dotenv-123456\n"
                        "LLM_MODEL=from-dotenv\n")
    monkeypatch.delenv("LLM_PROVIDER")
    monkeypatch.setenv("LLM_MODEL", "from-environment")
    config = load_config(env_file=env_file)
    assert config.api_key == "from-dotenv-123456"
    assert config.model == "from-environment"


def test_dotenv_is_found_from_the_working_directory_upward(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("LLM_PROVIDER=qwen\nDASHSCOPE_API_KEY=dashscope-key-0001\n")
    nested = tmp_path / "notebooks"
    nested.mkdir()
    monkeypatch.chdir(nested)
    monkeypatch.delenv("LLM_PROVIDER")
    config = load_config()
    assert config.provider == "qwen" and "compatible-mode" in config.base_url


def test_dotenv_is_not_loaded_into_the_environment(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("OPENAI_API_KEY=should-stay-in-file\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LLM_PROVIDER")
    assert load_config().provider == "openai"
    import os
    assert "OPENAI_API_KEY" not in os.environ


def test_importing_helpers_reads_no_dotenv(tmp_path):
    import subprocess
    import sys
    (tmp_path / ".env").write_text("LLM_PROVIDER=broken-on-purpose\n")
    code = "import helpers, os; print(os.environ.get('LLM_PROVIDER'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert out.stdout.strip() == "None", out.stderr


def test_clients_ignore_the_sdks_own_environment_fallbacks(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://elsewhere.invalid/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sdk-fallback-key")
    config = load_config("offline")
    sync, asynchronous = make_client(config), make_async_client(config)
    assert isinstance(sync, openai.OpenAI) and isinstance(asynchronous, openai.AsyncOpenAI)
    for c in (sync, asynchronous):
        assert str(c.base_url).rstrip("/") == config.base_url
        assert c.api_key == config.api_key


def test_offline_client_really_streams():
    stream = make_client().chat.completions.create(
        model=load_config().model, stream=True, messages=[{"role": "user", "content": "hi"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


@pytest.mark.parametrize(("key", "shown"), [(None, "(none)"), ("", "(none)"),
                                            ("short", "******"), (FAKE_KEY, "sk-…ef")])
def test_mask_key(key, shown):
    assert mask_key(key) == shown


def test_key_never_in_repr_or_str():
    config = load_config("openai", env={"OPENAI_API_KEY": FAKE_KEY})
    for text in (repr(config), str(config), config.describe()):
        assert FAKE_KEY not in text and "sk-…ef" in text


def test_every_preset_is_complete():
    for name, p in PROVIDERS.items():
        assert p.name == name and p.default_model and p.notes
        if name != "offline":
            assert p.base_url.startswith(("https://", "http://localhost"))
    assert PROVIDERS["moonshot-global"].base_url == "https://api.moonshot.ai/v1"
    assert PROVIDERS["local"].key_env is None
