"""Each service refuses a bad setting at start: exit code 2, the variable named, no traceback."""

import subprocess
import sys

import pytest

SERVICES = {
    "user-state": "clickstream_user_state",
    "enricher": "clickstream_enricher",
    "rabbit-bridge": "clickstream_rabbit_bridge",
    "generator": "clickstream_generator",
}


@pytest.mark.parametrize("module", SERVICES.values())
def test_python_dash_m_refuses_a_bad_setting_naming_it(module):
    result = subprocess.run(
        [sys.executable, "-m", module],
        env={"HTTP_PORT": "eighty", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "HTTP_PORT='eighty'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("script", SERVICES)
def test_console_script_named_after_the_folder_exists(script):
    scripts = __import__("pathlib").Path(sys.executable).parent
    assert (scripts / script).exists()
