"""An HTTPS server for integration_function_discovery_tls: python's http.server over TLS that asks
every client for a certificate signed by CA (a client without one fails the handshake).
Usage: tls_http_server.py PORT DIR CERT KEY CA"""
import functools
import ssl
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

port, directory, cert, key, ca = sys.argv[1:6]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.verify_mode = ssl.CERT_REQUIRED
handler = functools.partial(SimpleHTTPRequestHandler, directory=directory)
server = ThreadingHTTPServer(("127.0.0.1", int(port)), handler)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
