"""Results that travel: push and pull the DVC cache and run cache, with errors that say what to do.

    python -m tlstudy.remote push [--remote NAME]   # dvc push --run-cache
    python -m tlstudy.remote pull [--remote NAME] [--allow-missing]   # dvc pull --run-cache

The remote is DVC's own (docs/team.md): an S3-compatible bucket added with
``dvc remote add``, its credentials in ``.dvc/config.local`` or the environment, never in git. This
module only runs DVC and, when it fails, names the remote and the fix in one line; DVC itself
never changes local results on a failed transfer.
"""

from __future__ import annotations

import argparse
import sys

from tlstudy.dvccli import dvc

# How botocore (through dvc-s3's s3fs) and aiohttp word each failure. No connection at all:
UNREACHABLE = ("Could not connect to the endpoint URL", "Cannot connect to host", "Connection refused",
               "Name or service not known", "Temporary failure in name resolution", "No route to host",
               "Connect timeout on endpoint URL")
# A connection, then no answer in time: the server is there, but slow or busy.
TIMED_OUT = ("Read timeout on endpoint URL", "Timeout on reading data from socket", "Read timed out")
REFUSED = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden", "AccessDenied", "(403)",
           "Unable to locate credentials", "NoCredentialsError")


def dvc_config(key: str) -> str | None:
    result = dvc("config", key, check=False)
    return result.stdout.strip() or None if result.returncode == 0 else None


def explain(stderr: str | None, remote: str | None, url: str | None, endpoint: str | None) -> str:
    """DVC's failure as one line: what went wrong with which remote, and the fix. Any ``stderr`` will
    do, an empty one included."""
    stderr = stderr or ""
    where = f"remote {remote!r} ({url}{', endpoint ' + endpoint if endpoint else ''})" if remote else "no remote"
    if remote is None or "no remote specified" in stderr.lower():
        return ("no DVC remote is set up: add one with `dvc remote add -d store s3://BUCKET/PATH` "
                "(docs/team.md)")
    if any(marker in stderr for marker in UNREACHABLE):
        return (f"{where} is unreachable: start the server or fix the address with "
                f"`dvc remote modify {remote} endpointurl URL`; local results are untouched")
    if any(marker in stderr for marker in TIMED_OUT):
        return (f"{where} answered too slowly (a read timed out): retry when it is less busy, or give it longer "
                f"with `dvc remote modify {remote} read_timeout SECONDS`; local results are untouched")
    if any(marker in stderr for marker in REFUSED):
        return (f"{where} refused the credentials: set them with `dvc remote modify --local {remote} "
                "access_key_id KEY` and `... secret_access_key SECRET` (or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY); local results are untouched")
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    if not lines:
        return f"{where}: DVC failed without a message; run it again with -v to see DVC's log"
    return f"{where}: {errors[-1] if errors else lines[-1]}"


def transfer(command: str, remote: str | None = None, allow_missing: bool = False) -> int:
    """``dvc push`` or ``dvc pull`` with the run cache; on failure, one line on stderr and exit code 1.
    ``allow_missing`` (pull): outputs the remote lacks are left for ``dvc repro`` to make."""
    result = dvc(command, "--run-cache", *(["--remote", remote] if remote else []),
                 *(["--allow-missing"] if allow_missing else []), check=False, stdout=False)
    if result.returncode == 0:
        return 0
    name = remote or dvc_config("core.remote")
    url = dvc_config(f"remote.{name}.url") if name else None
    endpoint = dvc_config(f"remote.{name}.endpointurl") if name else None
    print(f"{command} failed: {explain(result.stderr, name, url, endpoint)}", file=sys.stderr)
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("push", "pull"))
    parser.add_argument("--remote", "-r", help="a remote other than the default")
    parser.add_argument("--allow-missing", action="store_true",
                        help="pull: leave outputs the remote lacks to `dvc repro` (a branch with new results)")
    args = parser.parse_args()
    if args.allow_missing and args.command != "pull":
        parser.error("--allow-missing goes with pull")
    return transfer(args.command, args.remote, args.allow_missing)


if __name__ == "__main__":
    sys.exit(main())
