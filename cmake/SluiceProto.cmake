# Protobuf-c code generation.
#
# Envoy's API protos come from the pinned npm package @grpc/grpc-js-xds
# (installed by scripts/setup into node_modules/). Its bundled
# validate/validate.proto is older than the Envoy protos beside it (protoc
# fails with '"validate.StringRules" has no field named "ignore_empty"'), so a
# current validate.proto, the one from the protoc-gen-validate Go module pinned
# in go.sum, goes first on the include path. Nothing generated is committed.

set(SLUICE_XDS_DEPS ${CMAKE_SOURCE_DIR}/node_modules/@grpc/grpc-js-xds/deps)
if(NOT EXISTS ${SLUICE_XDS_DEPS}/envoy-api/envoy)
  message(FATAL_ERROR "Envoy API protos not found in ${SLUICE_XDS_DEPS}; run scripts/setup (npm ci)")
endif()

if(NOT SLUICE_PGV_DIR)
  if(NOT GO)
    message(FATAL_ERROR "go not found: needed to locate the protoc-gen-validate module (run scripts/setup)")
  endif()
  execute_process(
    COMMAND ${GO} list -m -f "{{.Dir}}" github.com/envoyproxy/protoc-gen-validate
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
    OUTPUT_VARIABLE _pgv_dir OUTPUT_STRIP_TRAILING_WHITESPACE
    ERROR_VARIABLE _pgv_err RESULT_VARIABLE _pgv_rc)
  if(NOT _pgv_rc EQUAL 0 OR NOT EXISTS ${_pgv_dir}/validate/validate.proto)
    message(FATAL_ERROR "current validate.proto not found (go list: ${_pgv_err}); run scripts/setup (go mod download)")
  endif()
  set(SLUICE_PGV_DIR ${_pgv_dir} CACHE PATH "protoc-gen-validate module directory (current validate.proto)")
endif()

# Include order matters: the current validate.proto shadows the stale copy.
set(SLUICE_PROTO_INCLUDES
  ${SLUICE_PGV_DIR}
  ${SLUICE_XDS_DEPS}/envoy-api
  ${SLUICE_XDS_DEPS}/xds
  ${SLUICE_XDS_DEPS}/googleapis
  ${SLUICE_XDS_DEPS}/protoc-gen-validate
  /usr/include)

# sluice_proto_closure(<out-var> <root.proto> <extra-include>...)
# Lists, as import paths, every file the root imports (transitively),
# using protoc's own resolver (--dependency_out).
function(sluice_proto_closure out root)
  set(_incs ${ARGN} ${SLUICE_PROTO_INCLUDES})
  set(_iflags)
  foreach(_i ${_incs})
    list(APPEND _iflags -I${_i})
  endforeach()
  get_filename_component(_rootname ${root} NAME)
  set(_dep ${CMAKE_CURRENT_BINARY_DIR}/${_rootname}.d)
  execute_process(
    COMMAND ${PROTOC} ${_iflags} --dependency_out=${_dep} -o ${CMAKE_CURRENT_BINARY_DIR}/${_rootname}.pb ${_rootname}
    RESULT_VARIABLE _rc ERROR_VARIABLE _err)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "protoc failed on ${root}:\n${_err}")
  endif()
  file(READ ${_dep} _deps)
  string(REGEX REPLACE "\\\\\n" " " _deps "${_deps}")
  string(REGEX MATCHALL "[^ \t\n:]+\\.proto" _files "${_deps}")
  set(_rel)
  foreach(_f ${_files})
    if(_f MATCHES "${_rootname}$")
      continue()
    endif()
    foreach(_i ${_incs})
      string(FIND "${_f}" "${_i}/" _pos)
      if(_pos EQUAL 0)
        string(LENGTH "${_i}/" _l)
        string(SUBSTRING "${_f}" ${_l} -1 _f)
        break()
      endif()
    endforeach()
    list(APPEND _rel ${_f})
  endforeach()
  list(REMOVE_DUPLICATES _rel)
  set(${out} ${_rel} PARENT_SCOPE)
endfunction()

# sluice_protoc_c(TARGET <lib> FILES <import-path>... [INCLUDES <dir>...]
#                 [LINK <lib>...] [REGISTRY <symbol>])
# Generates protobuf-c code for FILES into a static library. With REGISTRY,
# also generates <symbol>[] / <symbol>_count: every message descriptor of the
# library, for Any type resolution (see common/include/sluice/types.h).
function(sluice_protoc_c)
  cmake_parse_arguments(A "" "TARGET;REGISTRY" "FILES;INCLUDES;LINK" ${ARGN})
  set(_out ${CMAKE_CURRENT_BINARY_DIR}/gen)
  set(_iflags)
  foreach(_i ${A_INCLUDES} ${SLUICE_PROTO_INCLUDES})
    list(APPEND _iflags -I${_i})
  endforeach()
  set(_srcs)
  set(_hdrs)
  set(_deps)
  foreach(_f ${A_FILES})
    string(REGEX REPLACE "\\.proto$" "" _b ${_f})
    list(APPEND _srcs ${_out}/${_b}.pb-c.c)
    list(APPEND _hdrs ${_out}/${_b}.pb-c.h)
    foreach(_i ${A_INCLUDES} ${SLUICE_PROTO_INCLUDES})
      if(EXISTS ${_i}/${_f})
        list(APPEND _deps ${_i}/${_f})
        break()
      endif()
    endforeach()
  endforeach()
  add_custom_command(
    OUTPUT ${_srcs} ${_hdrs}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${_out}
    COMMAND ${PROTOC_C} ${_iflags} --c_out=${_out} ${A_FILES}
    DEPENDS ${_deps}
    COMMENT "protoc-c: ${A_TARGET}"
    VERBATIM)
  if(A_REGISTRY)
    set(_reg ${_out}/${A_TARGET}_registry.c)
    add_custom_command(
      OUTPUT ${_reg}
      COMMAND ${CMAKE_COMMAND} -DOUT=${_reg} -DSYMBOL=${A_REGISTRY} "-DHEADERS=${_hdrs}"
              -P ${CMAKE_SOURCE_DIR}/cmake/GenRegistry.cmake
      DEPENDS ${_hdrs} ${CMAKE_SOURCE_DIR}/cmake/GenRegistry.cmake
      COMMENT "descriptor registry: ${A_TARGET}"
      VERBATIM)
    list(APPEND _srcs ${_reg})
  endif()
  add_library(${A_TARGET} STATIC ${_srcs})
  target_include_directories(${A_TARGET} SYSTEM PUBLIC ${_out})
  target_link_libraries(${A_TARGET} PUBLIC PkgConfig::PROTOBUFC ${A_LINK})
  set_target_properties(${A_TARGET} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  # Generated code is not held to the project's warning flags.
  target_compile_options(${A_TARGET} PRIVATE -w)
endfunction()
