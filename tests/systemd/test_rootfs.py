"""How the system tests pick their Debian mirror and cache key (no network)."""

from __future__ import annotations

from tests.systemd import rootfs


def test_mirror_from_deb822_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n"
    )
    assert rootfs.apt_mirror(tmp_path) == "http://mirror.example/debian"


def test_mirror_from_one_line_sources(tmp_path):
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64] http://ftp.example/debian bookworm main\n"
    )
    assert rootfs.apt_mirror(tmp_path) == "http://ftp.example/debian"


def test_no_sources_falls_back_to_the_debian_cdn(tmp_path):
    assert rootfs.apt_mirror(tmp_path) == rootfs.DEFAULT_MIRROR


def test_cache_key_follows_the_package_list(monkeypatch):
    key = rootfs.cache_key()
    monkeypatch.setattr(rootfs, "PACKAGES", (*rootfs.PACKAGES, "curl"))
    assert rootfs.cache_key() != key
