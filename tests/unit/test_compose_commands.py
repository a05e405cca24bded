"""The compose target's command shapes for Compose v1 and v2, and the extra CA bundle it passes to builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfci.errors import ConfigError
from perfci.targets.compose import build_args, extra_ca_certs
from perfci.targets.select import image_tag

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    ("cli", "expected"),
    [
        pytest.param(("docker-compose",), ["build", "--force-rm", "app"], id="v1: no failed-step containers"),
        pytest.param(("docker", "compose"), ["build", "app"], id="v2: BuildKit has no --force-rm"),
    ],
)
def test_build_arguments_per_compose_version(cli: tuple[str, ...], expected: list[str]) -> None:
    assert build_args(cli) == expected


def test_no_extra_ca_configured_is_an_empty_bundle() -> None:
    assert extra_ca_certs({}) == ""
    assert extra_ca_certs({"PERFCI_EXTRA_CA": "  "}) == ""


def test_the_extra_ca_bundle_is_read_from_the_host_not_the_checkout(tmp_path: Path) -> None:
    bundle = tmp_path / "elsewhere" / "ca.pem"
    bundle.parent.mkdir()
    bundle.write_text(PEM * 2, encoding="ascii")
    assert extra_ca_certs({"PERFCI_EXTRA_CA": str(bundle)}) == PEM * 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "cannot be read", id="missing"),
        pytest.param("not a certificate\n", "holds no PEM certificate", id="not PEM"),
    ],
)
def test_a_bad_extra_ca_bundle_is_a_usage_error_with_a_hint(tmp_path: Path, content: str | None, message: str) -> None:
    bundle = tmp_path / "ca.pem"
    if content is not None:
        bundle.write_text(content, encoding="ascii")
    with pytest.raises(ConfigError, match=message) as caught:
        extra_ca_certs({"PERFCI_EXTRA_CA": str(bundle)})
    assert caught.value.exit_code == 2
    assert "PERFCI_EXTRA_CA" in str(caught.value)


def test_image_tags_differ_per_arm_and_checkout_and_are_stable(tmp_path: Path) -> None:
    one, other = tmp_path / "one", tmp_path / "other"
    assert image_tag(one, "base") != image_tag(one, "candidate")
    assert image_tag(one, "base") != image_tag(other, "base")
    assert image_tag(one, "base") == image_tag(one, "base")
    assert image_tag(one, "base").startswith("perfci-userservice:base-")
