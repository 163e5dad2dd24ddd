"""Call the Prometheus API from a container on the shared network: api.py URL [USER PASSWORD] -> JSON."""

import base64
import json
import sys
import urllib.error
import urllib.request

request = urllib.request.Request(sys.argv[1])  # noqa: S310 - the test passes http:// URLs only
if len(sys.argv) > 3:
    token = base64.b64encode(f"{sys.argv[2]}:{sys.argv[3]}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
try:
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http:// only
        print(json.dumps({"status": response.status, "body": response.read().decode()}))
except urllib.error.HTTPError as err:
    print(json.dumps({"status": err.code, "body": err.read().decode()}))
