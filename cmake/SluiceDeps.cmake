# System libraries. find_package(cnats) and find_package(gRPC) are broken on
# Debian 12, so everything comes through pkg-config imported targets.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(NATS REQUIRED IMPORTED_TARGET libnats)
pkg_check_modules(PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)
pkg_check_modules(YAML REQUIRED IMPORTED_TARGET yaml-0.1)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(GRPC REQUIRED IMPORTED_TARGET grpc)
pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET openssl)
pkg_check_modules(CARES REQUIRED IMPORTED_TARGET libcares)
pkg_check_modules(CMOCKA IMPORTED_TARGET cmocka)

find_program(PROTOC protoc REQUIRED)
find_program(PROTOC_C protoc-c REQUIRED)
find_program(GO go)
find_program(NATS_SERVER nats-server PATHS /usr/bin /usr/sbin /usr/local/bin)
