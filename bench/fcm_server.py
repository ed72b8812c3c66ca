"""The FCM-compatible test server in a process of its own, for benchmarks:
prints one JSON line (base URL and a service-account file it trusts), then
serves until killed."""
import json
import sys
import time

from bench import appside


def main(credentials_path):
    server = appside.fake_fcm_server().start()
    server.write_service_account(credentials_path)
    print(json.dumps({"base_url": server.base_url, "project_id": server.project_id,
                      "credentials": credentials_path}), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv[1])
