"""DVC's transfer failures, as DVC 3.67 with dvc-s3 printed them against SeaweedFS, in one line each."""

import pytest

from tlstudy.remote import explain

UNREACHABLE = ('ERROR: unexpected error - Could not connect to the endpoint URL: '
               '"http://127.0.0.1:9/tlstudy/cache/files/md5/b1/946ac92492d2347c6235b4d2611184"\n\n'
               'Having any troubles? Hit us up at https://dvc.org/support, we are always happy to help!\n')
FORBIDDEN = ("ERROR: unexpected error - Forbidden: An error occurred (403) when calling the HeadObject operation: "
             "Forbidden\n\nHaving any troubles? Hit us up at https://dvc.org/support, we are always happy to help!\n")


def test_unreachable_names_the_remote_its_address_and_the_fix():
    line = explain(UNREACHABLE, "store", "s3://tlstudy/cache", "http://127.0.0.1:9")
    assert line == ("remote 'store' (s3://tlstudy/cache, endpoint http://127.0.0.1:9) is unreachable: start the "
                    "server or fix the address with `dvc remote modify store endpointurl URL`; local results are "
                    "untouched")


def test_refused_credentials_name_the_remote_and_where_keys_go():
    line = explain(FORBIDDEN, "team", "s3://bucket/x", None)
    assert line.startswith("remote 'team' (s3://bucket/x) refused the credentials: set them with "
                           "`dvc remote modify --local team access_key_id KEY`")


def test_no_remote_says_how_to_add_one():
    stderr = ("ERROR: failed to push data to the cloud - config file error: no remote specified in "
              "/repo/.dvc/config. Setup default remote with\n    dvc remote default <remote name>")
    line = explain(stderr, None, None, None)
    assert "dvc remote add -d store" in line and "\n" not in line


def test_anything_else_keeps_dvcs_own_error_line():
    line = explain("some progress\nERROR: failed to push data to the cloud - disk full\n", "store", "s3://b", None)
    assert line == "remote 'store' (s3://b): ERROR: failed to push data to the cloud - disk full"


# DVC 3.67 and dvc-s3 against a server that accepted the connection and never answered (read_timeout 2,
# AWS_MAX_ATTEMPTS=1); and botocore's wording when the connection itself times out.
READ_TIMEOUT = ('ERROR: unexpected error - Read timeout on endpoint URL: '
                '"http://127.0.0.1:36521/bucket/path/files/md5/b1/946ac92492d2347c6235b4d2611184"\n\n'
                'Having any troubles? Hit us up at https://dvc.org/support, we are always happy to help!\n')
CONNECT_TIMEOUT = 'ERROR: unexpected error - Connect timeout on endpoint URL: "http://10.255.255.1:8333/b"\n'


def test_a_read_time_out_is_a_slow_server_not_an_unreachable_one():
    line = explain(READ_TIMEOUT, "store", "s3://bucket/path", "http://127.0.0.1:36521")
    assert line == ("remote 'store' (s3://bucket/path, endpoint http://127.0.0.1:36521) answered too slowly (a read "
                    "timed out): retry when it is less busy, or give it longer with `dvc remote modify store "
                    "read_timeout SECONDS`; local results are untouched")


def test_a_connection_that_times_out_is_unreachable():
    assert "is unreachable: start the server" in explain(CONNECT_TIMEOUT, "store", "s3://b", "http://10.255.255.1:8333")


@pytest.mark.parametrize("stderr", ["", "\n\n  \n", None])
def test_any_message_gives_one_line_even_none(stderr):
    line = explain(stderr, "store", "s3://b", None)
    assert line == "remote 'store' (s3://b): DVC failed without a message; run it again with -v to see DVC's log"


def test_the_test_s3_server_starts_on_other_ports_when_one_is_taken_before_it_binds(tmp_path, monkeypatch):
    """Another server takes the S3 port between the search for free ports and SeaweedFS's bind, and
    answers as S3 does without credentials (403): SeaweedFS starts again on other ports, and the server
    handed out is SeaweedFS, not the other one."""
    import http.server
    import threading

    from tests import s3server

    class Forbidden(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(403)

        def log_message(self, *args):
            pass

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forbidden)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    taken, searches, free_ports = other.server_address[1], [], s3server.free_ports

    def first_search_finds_a_taken_port(n):
        ports = free_ports(n)
        if not searches:
            ports[s3server.PORTS.index("s3.port")] = taken
        searches.append(ports)
        return ports

    monkeypatch.setattr(s3server, "free_ports", first_search_finds_a_taken_port)
    try:
        with s3server.seaweedfs(tmp_path) as server:
            assert len(searches) == 2 and server.endpoint == f"http://127.0.0.1:{searches[1][0]}" != taken
            assert server.process.poll() is None
            assert s3server.in_flight(server) >= 0, "SeaweedFS's own metrics page, with its gauges"
    finally:
        other.shutdown()
