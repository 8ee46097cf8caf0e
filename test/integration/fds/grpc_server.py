"""A gRPC server with server reflection (grpcio + grpcio-reflection) for
integration_function_discovery: the service bookstore.v1.Bookstore, defined by a file descriptor built
here (no generated code) that depends on google/protobuf/empty.proto. Usage: grpc_server.py PORT
[CERT KEY CA]: with CERT, KEY and CA (PEM files) it serves TLS and asks for a client certificate signed
by CA (integration_function_discovery_tls)."""
import sys
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf import empty_pb2  # noqa: F401 (puts empty.proto in the default pool)
from grpc_reflection.v1alpha import reflection

fdp = descriptor_pb2.FileDescriptorProto(name="bookstore/v1/bookstore.proto", package="bookstore.v1",
                                         syntax="proto3", dependency=["google/protobuf/empty.proto"])
shelf = fdp.message_type.add(name="Shelf")
shelf.field.add(name="id", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, json_name="id")
shelf.field.add(name="theme", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, json_name="theme")
svc = fdp.service.add(name="Bookstore")
svc.method.add(name="ListShelves", input_type=".google.protobuf.Empty", output_type=".bookstore.v1.Shelf")
svc.method.add(name="GetShelf", input_type=".bookstore.v1.Shelf", output_type=".bookstore.v1.Shelf")
descriptor_pool.Default().Add(fdp)

server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
reflection.enable_server_reflection(["bookstore.v1.Bookstore", reflection.SERVICE_NAME], server)
if len(sys.argv) > 4:
    def pem(path):
        with open(path, "rb") as f:
            return f.read()
    creds = grpc.ssl_server_credentials([(pem(sys.argv[3]), pem(sys.argv[2]))], root_certificates=pem(sys.argv[4]),
                                        require_client_auth=True)
    server.add_secure_port("127.0.0.1:%s" % sys.argv[1], creds)
else:
    server.add_insecure_port("127.0.0.1:%s" % sys.argv[1])
server.start()
print("serving", flush=True)
server.wait_for_termination()
