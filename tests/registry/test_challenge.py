"""WWW-Authenticate parsing: several challenges, quoted values, escapes."""

from __future__ import annotations

from scratchd.registry.challenge import Challenge, parse_challenges


def test_distribution_bearer_challenge():
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:org/app:pull,push"'
    )
    assert parse_challenges(header) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.example/token",
                "service": "registry.example",
                "scope": "repository:org/app:pull,push",
            },
        )
    ]


def test_several_challenges_and_spacing():
    header = 'Basic realm="Registry Realm" , Bearer  realm=https://a/t , service = svc'
    got = parse_challenges(header)
    assert [c.scheme for c in got] == ["basic", "bearer"]
    assert got[0].get("realm") == "Registry Realm"
    assert got[1].params == {"realm": "https://a/t", "service": "svc"}


def test_quoted_values_with_commas_and_escapes():
    header = r'Bearer realm="https://a/t?x=1,y=2",error="insufficient_scope",scope="a \"b\" c"'
    got = parse_challenges(header)[0]
    assert got.get("realm") == "https://a/t?x=1,y=2"
    assert got.get("error") == "insufficient_scope"
    assert got.get("scope") == 'a "b" c'


def test_scheme_and_param_names_are_case_insensitive():
    got = parse_challenges('BASIC Realm="r"')[0]
    assert got.scheme == "basic" and got.get("realm") == "r"


def test_bare_scheme_and_garbage():
    assert parse_challenges("Basic") == [Challenge("basic", {})]
    assert parse_challenges("") == []
    assert parse_challenges("   ,  ") == []
    assert parse_challenges('Bearer realm="unterminated')[0].get("realm") == "unterminated"
