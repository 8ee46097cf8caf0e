# sluice_warnings: an interface target every Sluice target links to.
add_library(sluice_warnings INTERFACE)
target_compile_options(sluice_warnings INTERFACE
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wno-unused-parameter
  # protobuf-c's <Message>__INIT macros name every field, Envoy's deprecated
  # ones too: clang warns at each use of such a macro (gcc does not, and
  # still warns when code touches a deprecated field itself).
  $<$<C_COMPILER_ID:Clang>:-Wno-deprecated-declarations>
  $<$<BOOL:${SLUICE_WERROR}>:-Werror>)
target_compile_definitions(sluice_warnings INTERFACE _GNU_SOURCE)
