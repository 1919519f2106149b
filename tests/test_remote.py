"""DVC's transfer failures, as DVC 3.67 with dvc-s3 printed them against SeaweedFS, in one line each."""

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
