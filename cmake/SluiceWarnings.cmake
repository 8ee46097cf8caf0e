# sluice_warnings: an interface target every Sluice target links to.
add_library(sluice_warnings INTERFACE)
target_compile_options(sluice_warnings INTERFACE
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wno-unused-parameter
  $<$<BOOL:${SLUICE_WERROR}>:-Werror>)
target_compile_definitions(sluice_warnings INTERFACE _GNU_SOURCE)
