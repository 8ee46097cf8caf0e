# SLUICE_SANITIZE=ON builds everything with ASan + UBSan; leaks fail tests
# (LeakSanitizer is part of ASan on Linux). Every finding is fatal
# (-fno-sanitize-recover=all): a UBSan report that printed and let the run
# go on would pass a test or a fuzz run that should fail (issue 14).
if(SLUICE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=all -g)
  add_link_options(-fsanitize=address,undefined)
endif()
if(SLUICE_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=all -g)
  add_link_options(-fsanitize=address,undefined)
endif()
