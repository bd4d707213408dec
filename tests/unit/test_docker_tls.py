"""Docker's TLS variables, when they are what is wrong (issue 28: they got "start Docker").

The certificate cases run through the CLI in the corpus (tests/corpus/cases/docker.yaml);
here the decision on the engine's words for the two mismatches a corpus cannot produce
without a TLS engine: TLS asked of a plain engine, and plain HTTP sent to a TLS one.
"""

from __future__ import annotations

from docker.errors import DockerException, TLSParameterError

from paless_deploy.adapters.docker import _tls_problem

WHERE = "tcp://engine:2376"


def test_certificates_the_cert_path_lacks_are_named(tmp_path):
    (tmp_path / "ca.pem").write_text("x")
    error = _tls_problem(TLSParameterError("Path to a certificate and key files must be "
                                           "provided"), WHERE, "r",
                         {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)})
    assert error is not None and error.code == "docker-tls" and error.exit_code == 3
    assert f"DOCKER_CERT_PATH={tmp_path} lacks cert.pem, key.pem" in error.message


def test_tls_asked_of_an_engine_without_it():
    words = "Caused by SSLError(SSLError(1, '[SSL: WRONG_VERSION_NUMBER] wrong version number'))"
    error = _tls_problem(DockerException(words), WHERE, words, {"DOCKER_TLS_VERIFY": "1"})
    assert error is not None and "does not answer over TLS" in error.message
    assert "Unset DOCKER_TLS_VERIFY" in error.hint


def test_plain_http_sent_to_a_tls_engine():
    words = "400 Client Error: Bad Request (\"Client sent an HTTP request to an HTTPS server.\")"
    error = _tls_problem(DockerException(words), WHERE, words, {})
    assert error is not None and "Set DOCKER_TLS_VERIFY=1" in error.hint


def test_an_engine_that_is_down_is_not_a_tls_problem():
    words = "Error while fetching server API version: ('Connection aborted.', " \
            "FileNotFoundError(2, 'No such file or directory'))"
    assert _tls_problem(DockerException(words), "unix:///var/run/docker.sock", words, {}) is None
