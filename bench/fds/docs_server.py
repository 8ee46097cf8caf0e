"""bench/fds/docs_server.py - the OpenAPI documents of bench_fds, served by one real HTTP server
(python's ThreadingHTTPServer) on loopback.

GET /doc/<i>.json is upstream i's OpenAPI 3.0 document: 50 paths "/u<i>/r<j>" (get<j>, post<j> with a
JSON body) and "/u<i>/r<j>/{id}" (put<j> with a body, delete<j>), 200 operations, with an ETag that
names its version (If-None-Match -> 304). POST /_change/<i> makes a new version of document i: get0
gains one header parameter "x-v<version>" (its function's template changes, the count stays 200).
Usage: docs_server.py PORT [OPERATIONS]"""
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
OPS = int(sys.argv[2]) if len(sys.argv) > 2 else 200
lock = threading.Lock()
versions = {}
cache = {}

BODY = {"content": {"application/json": {"schema": {"type": "object", "properties": {
    "name": {"type": "string"}, "count": {"type": "integer"}, "tag": {"type": "string"}}}}}}


def document(i, v):
    paths = {}
    for j in range((OPS + 3) // 4):
        ops = [("get", "/u%d/r%d" % (i, j)), ("post", "/u%d/r%d" % (i, j)),
               ("put", "/u%d/r%d/{id}" % (i, j)), ("delete", "/u%d/r%d/{id}" % (i, j))]
        for k, (method, path) in enumerate(ops):
            if j * 4 + k >= OPS:
                break
            op = {"operationId": "%s%d" % (method, j), "responses": {"200": {"description": "ok"}}}
            params = []
            if "{id}" in path:
                params.append({"name": "id", "in": "path", "required": True, "schema": {"type": "string"}})
            if method == "get" and j == 0 and v:
                params.append({"name": "x-v%d" % v, "in": "header", "schema": {"type": "string"}})
            if params:
                op["parameters"] = params
            if method in ("post", "put"):
                op["requestBody"] = BODY
            paths.setdefault(path, {})[method] = op
    return json.dumps({"openapi": "3.0.3", "info": {"title": "bench %d" % i, "version": str(v)},
                       "paths": paths}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, code, body=b"", etag=None):
        self.send_response(code)
        if etag:
            self.send_header("ETag", etag)
        if code != 304:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if code != 304:
            self.wfile.write(body)

    def do_GET(self):
        m = re.fullmatch(r"/doc/(\d+)\.json", self.path)
        if not m:
            return self.answer(404, b"{}")
        i = int(m.group(1))
        with lock:
            v = versions.get(i, 0)
            body = cache.get((i, v))
            if body is None:
                body = cache[(i, v)] = document(i, v)
        etag = '"%d-%d"' % (i, v)
        if self.headers.get("If-None-Match") == etag:
            return self.answer(304, etag=etag)
        self.answer(200, body, etag)

    def do_POST(self):
        m = re.fullmatch(r"/_change/(\d+)", self.path)
        if not m:
            return self.answer(404, b"{}")
        i = int(m.group(1))
        with lock:
            versions[i] = versions.get(i, 0) + 1
            cache.pop((i, versions[i] - 1), None)
        self.answer(200, b"{}")


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 256
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
