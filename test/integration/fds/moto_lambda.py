"""AWS Lambda for integration_function_discovery_lambda: moto's server (PyPI moto[server]) and boto3.

  moto_lambda.py serve PORT                   moto on 127.0.0.1:PORT, signatures checked (see below)
  moto_lambda.py setup ENDPOINT               an IAM user and key, temporary credentials of a role
                                              it assumes (printed "KEY SECRET TMPKEY TMPSECRET TOKEN"),
                                              functions alpha, beta, gamma, alpha's version 1, alias live
  moto_lambda.py delete ENDPOINT KEY SECRET NAME

serve: moto checks every request's SigV4 signature against its IAM users after the first 3 actions
(INITIAL_NO_AUTH_ACTION_COUNT; setup's create user, create key, put policy), so a request signed
with a wrong secret gets 403 SignatureDoesNotMatch, as AWS answers. moto's ListFunctions ignores
MaxItems and Marker; a WSGI middleware in front of it pages moto's answer as AWS does (MaxItems per
page, an opaque NextMarker: base64 with '+', '/' and '=', which the client must escape in the
query it signs). Everything else is moto's own answer.
"""
import base64
import io
import json
import os
import sys
import zipfile
from urllib.parse import parse_qs

ROLE_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def marker(i):
    return base64.b64encode(bytes([0xFB, 0xFF]) + b"page-%d" % i).decode()


def unmarker(m):
    return int(base64.b64decode(m)[2:].decode().split("-")[1])


class Pager:
    """Pages GET /2015-03-31/functions/ as AWS does; the request reaches moto unchanged."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "").rstrip("/")
        if environ["REQUEST_METHOD"] != "GET" or not path.endswith("/2015-03-31/functions"):
            return self.app(environ, start_response)
        got = {}

        def capture(status, headers, exc_info=None):
            got["status"], got["headers"] = status, headers

        body = b"".join(self.app(environ, capture))
        if not got["status"].startswith("200"):
            start_response(got["status"], got["headers"])
            return [body]
        q = parse_qs(environ.get("QUERY_STRING", ""))
        start = unmarker(q["Marker"][0]) if "Marker" in q else 0
        n = int(q.get("MaxItems", ["50"])[0])
        data = json.loads(body)
        fns = data["Functions"]
        data["Functions"] = fns[start:start + n]
        if start + n < len(fns):
            data["NextMarker"] = marker(start + n)
        body = json.dumps(data).encode()
        headers = [(k, v) for k, v in got["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(got["status"], headers)
        return [body]


def serve(port):
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
    from werkzeug.serving import run_simple
    from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, Pager(app), threaded=True, request_handler=MotoRequestHandler)


def sign_empty_body(request, **kwargs):
    """moto checks a body-less request's signature against a hash of its parsed query, not of the
    empty body; a signed x-amz-content-sha256 (as sluice-function-discovery sends) settles it."""
    if not request.body:
        request.headers["X-Amz-Content-SHA256"] = EMPTY_SHA256


def client(service, endpoint, key="setup", secret="setup"):
    import boto3
    c = boto3.client(service, region_name="us-east-1", endpoint_url=endpoint,
                     aws_access_key_id=key, aws_secret_access_key=secret)
    c.meta.events.register("before-sign", sign_empty_body)
    return c


def setup(endpoint):
    iam = client("iam", endpoint)
    iam.create_user(UserName="fds")
    k = iam.create_access_key(UserName="fds")["AccessKey"]
    iam.put_user_policy(UserName="fds", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
    key, secret = k["AccessKeyId"], k["SecretAccessKey"]
    iam = client("iam", endpoint, key, secret)
    role = iam.create_role(RoleName="fds-lambda", AssumeRolePolicyDocument=json.dumps(ROLE_POLICY))["Role"]["Arn"]
    lam = client("lambda", endpoint, key, secret)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", "def handler(event, context):\n    return event\n")
    for name in ("alpha", "beta", "gamma"):
        lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="index.handler",
                            Code={"ZipFile": buf.getvalue()})
    version = lam.publish_version(FunctionName="alpha")["Version"]
    lam.create_alias(FunctionName="alpha", Name="live", FunctionVersion=version)
    # temporary credentials (moto checks their session token on every request)
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/fds"}, "Action": "sts:AssumeRole"}]}
    reader = iam.create_role(RoleName="fds-reader", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="fds-reader", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
    tmp = client("sts", endpoint, key, secret).assume_role(RoleArn=reader, RoleSessionName="fds")["Credentials"]
    print(key, secret, tmp["AccessKeyId"], tmp["SecretAccessKey"], tmp["SessionToken"])


def delete(endpoint, key, secret, name):
    client("lambda", endpoint, key, secret).delete_function(FunctionName=name)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "serve":
        serve(int(sys.argv[2]))
    elif cmd == "setup":
        setup(sys.argv[2])
    elif cmd == "delete":
        delete(*sys.argv[2:6])
    else:
        sys.exit("usage: moto_lambda.py serve PORT | setup ENDPOINT | delete ENDPOINT KEY SECRET NAME")
