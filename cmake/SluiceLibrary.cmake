# sluice_library(<target> [PUBLIC <lib>...] [PRIVATE <lib>...] [TEST_LINK <lib>...])
# One library of the layer under common/<dir> (docs/architecture.md):
#   include/sluice/*.h   its public headers (what other libraries, services and tests include)
#   src/**/*.c, *.h      its sources and private headers (nobody else includes them)
#   tests/test_<m>.c     its unit tests, next to the code: one ctest entry each, unit_<m>
# Unit tests may include the private headers (white-box tests of a module).
function(sluice_library name)
  cmake_parse_arguments(A "" "" "PUBLIC;PRIVATE;TEST_LINK" ${ARGN})
  file(GLOB_RECURSE _src CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/*.c)
  add_library(${name} STATIC ${_src})
  target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                     PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${A_PUBLIC} PRIVATE sluice_warnings ${A_PRIVATE})
  sluice_unit_tests(${CMAKE_CURRENT_SOURCE_DIR}/tests LINK ${name} ${A_TEST_LINK}
                    INCLUDE ${CMAKE_CURRENT_SOURCE_DIR}/src)
endfunction()

# sluice_unit_tests(<dir> LINK <lib>... [INCLUDE <dir>...])
# Every <dir>/test_<m>.c becomes the unit test executable and ctest entry unit_<m>.
function(sluice_unit_tests dir)
  cmake_parse_arguments(A "" "" "LINK;INCLUDE" ${ARGN})
  file(GLOB _tests CONFIGURE_DEPENDS ${dir}/test_*.c)
  foreach(_t ${_tests})
    get_filename_component(_n ${_t} NAME_WE)
    string(REGEX REPLACE "^test_" "" _n ${_n})
    sluice_test(unit_${_n} LABEL unit SOURCES ${_t} LINK ${A_LINK} PkgConfig::CMOCKA)
    if(A_INCLUDE)
      target_include_directories(unit_${_n} PRIVATE ${A_INCLUDE})
    endif()
  endforeach()
endfunction()

# sluice_add_subdirectories(): add_subdirectory() for every directory under
# the current source directory that has a CMakeLists.txt (one per service,
# one per tool). A macro, so the subdirectories see the caller's scope.
macro(sluice_add_subdirectories)
  file(GLOB _sluice_subdirs LIST_DIRECTORIES true CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*)
  foreach(_d ${_sluice_subdirs})
    if(IS_DIRECTORY ${_d} AND EXISTS ${_d}/CMakeLists.txt)
      add_subdirectory(${_d})
    endif()
  endforeach()
endmacro()
