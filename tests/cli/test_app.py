"""The CLI shell: help, version, exit codes, one-line errors, config show."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.cli.helpers import ROOT, invoke, tracknet


def _commands(help_text: str) -> list[str]:
    block = help_text.split("Commands")[-1]
    return re.findall(r"^\W*([a-z][a-z-]+)\s{2,}", block, flags=re.M)


def test_help_lists_only_working_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    commands = _commands(result.stdout)
    assert "config" in commands
    for name in commands:  # every listed command answers its own --help
        sub = invoke(name, "--help")
        assert sub.exit_code == 0, (name, sub.stderr)
        for subname in _commands(sub.stdout) if "Commands" in sub.stdout else []:
            assert invoke(name, subname, "--help").exit_code == 0, (name, subname)


def test_every_command_help_shows_an_example() -> None:
    for name in _commands(invoke("--help").stdout):
        sub = invoke(name, "--help").stdout
        leaves = _commands(sub) if "Commands" in sub else [None]
        for leaf in leaves:
            args = [name] + ([leaf] if leaf else []) + ["--help"]
            assert "Example" in invoke(*args).stdout, args


def test_version_from_metadata() -> None:
    from importlib.metadata import version

    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"tracknet {version('tracknet-cli')}"


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys; from tracknet_cli.cli.app import run; run(['--help']); "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip().splitlines()[-1] == "False False"


def test_config_show_json_has_dinov3() -> None:
    result = invoke("config", "show", "--profile", "vit_heatmap", "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["config"]["model"]["backbone"]["pretrained_model_name"] == "facebook/dinov3-vitb16-pretrain-lvd1689m"
    assert payload["provenance"]["training.epochs"] == "profiles/training/default.yaml"


def test_config_show_yaml_lists_provenance() -> None:
    result = invoke(
        "config",
        "show",
        "--profile",
        "quickstart",
        "--set",
        "training.batch_size=4",
        env={"TRACKNET_TRAINING__EPOCHS": "7"},
    )
    assert result.exit_code == 0
    assert "batch_size: 4" in result.stdout
    assert re.search(r"training\.batch_size\s+--set", result.stdout)
    assert re.search(r"training\.epochs\s+env TRACKNET_TRAINING__EPOCHS", result.stdout)
    assert re.search(r"training\.lr\s+profiles/quickstart\.yaml", result.stdout)


def _one_line_error(result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_bad_value_names_the_key() -> None:
    _one_line_error(invoke("config", "show", "--profile", "quickstart", "--set", "training.lr=abc"), 2, "training.lr")


def test_unknown_profile_lists_profiles() -> None:
    _one_line_error(invoke("config", "show", "--profile", "nosuch"), 2, "quickstart", "vit_heatmap", "convnext_fpn")


def test_unknown_key_suggests() -> None:
    _one_line_error(invoke("config", "show", "--set", "training.batchsize=2"), 2, "did you mean 'training.batch_size'")


def test_out_of_bounds() -> None:
    _one_line_error(invoke("config", "show", "--set", "training.batch_size=-1"), 2, "training.batch_size")


def test_unparsable_set() -> None:
    _one_line_error(invoke("config", "show", "--set", "nonsense"), 2, "--set expects dotted.key=VALUE")


def test_unknown_option_and_command_exit_2() -> None:
    _one_line_error(invoke("config", "show", "--bogus"), 2, "--bogus")
    _one_line_error(invoke("nosuch"), 2, "nosuch")


def test_debug_shows_traceback_in_a_real_process() -> None:
    quiet = tracknet("config", "show", "--set", "training.lr=abc")
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    loud = tracknet("config", "show", "--set", "training.lr=abc", "--debug")
    assert "Traceback" in loud.stderr and loud.returncode != 0
    env_loud = tracknet("config", "show", "--set", "training.lr=abc", env={"TRACKNET_DEBUG": "1"})
    assert "Traceback" in env_loud.stderr


def test_python_m_and_pipes_are_plain() -> None:
    proc = tracknet("config", "show", "--profile", "quickstart", env={"NO_COLOR": "1"})
    assert proc.returncode == 0
    assert "\x1b[" not in proc.stdout and proc.stdout.startswith("# profile: quickstart")


def test_debug_flag_reaches_the_core() -> None:
    """`--debug` must reach code that never imports the CLI (e.g. transformers' loading chatter)."""
    from tracknet_cli.errors import debug_enabled

    assert not debug_enabled()
    assert invoke("--debug", "config", "show", "--json").exit_code == 0
    assert debug_enabled()
