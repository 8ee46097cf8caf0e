package main

import (
	_ "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	_ "github.com/envoyproxy/protoc-gen-validate/validate"
)

func main() {}
